"""`hilkit bench`: benchmarks that print ratios measured side by side in one run.

- `bench boards MODEL`: the model on every QEMU board (agreement, instructions, estimates, sizes).
- `bench model MODEL --exp ...`: whole-model runs of one board compared across exp variants.
- `bench exp --board B`: softmax/logistic/GELU kernels over 1024 floats per exp variant.
Wall-clock numbers are medians; instruction counts under QEMU are exact."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import UsageError


def _write(path, obj) -> None:
    if path:
        from hilkit.core.files import write_atomic
        write_atomic(path, json.dumps(obj, indent=2) + "\n")


def boards_table(model: str, limit: int | None, console) -> dict:
    from . import boards
    from . import run as hk_run

    rows = []
    for b in boards.list_boards():
        if not b.can_emulate:
            continue
        r = hk_run.run(model, b.id, limit=limit, console=console)
        rows.append({k: r[k] for k in ("board", "samples", "top1_agreement", "max_abs_diff",
                                      "instructions_per_inference", "instructions_identical", "latency_us",
                                      "energy_uj", "flash_bytes", "ram_bytes")})
    return {"model": Path(model).name, "rows": rows}


def print_boards_table(res: dict, console) -> None:
    from rich.table import Table
    t = Table(title=f"{res['model']} on every QEMU board")
    for col in ("board", "agreement", "insns/inference", "est. latency us", "est. energy uJ", "flash", "RAM"):
        t.add_column(col, justify="right" if col != "board" else "left")
    for r in res["rows"]:
        t.add_row(r["board"], f"{r['top1_agreement'] * 100:.2f} %", f"{r['instructions_per_inference']:,.0f}",
                  f"{r['latency_us']:,.1f}", f"{r['energy_uj']:,.2f}", f"{r['flash_bytes']:,}", f"{r['ram_bytes']:,}")
    console.print(t)


def model_variants(model: str, board: str, exps: list[str], limit: int | None, console) -> dict:
    from . import run as hk_run

    runs = {e: hk_run.run(model, board, exp=e, limit=limit, console=console) for e in exps}
    base = runs.get("libm")
    out = {"model": Path(model).name, "board": board, "results": []}
    for e, r in runs.items():
        row = {"exp": e, "accuracy": r["accuracy"], "top1_agreement": r["top1_agreement"],
               "instructions_per_inference": r["instructions_per_inference"], "latency_us": r["latency_us"],
               "latency_source": r["latency_source"]}
        if base is not None and e != "libm":
            key = "instructions_per_inference" if r["instructions_per_inference"] else "latency_us"
            row["reduction_vs_libm"] = 1.0 - r[key] / base[key]
            row["accuracy_change_pt"] = (r["accuracy"] - base["accuracy"]) * 100
        out["results"].append(row)
    return out


def main(args) -> int:
    from .cli import _console
    err, out = _console(), _console(stderr=False)
    what = getattr(args, "bench_command", None)
    if what == "boards":
        res = boards_table(args.model, args.limit, err)
        print_boards_table(res, out)
    elif what == "model" and args.vs == "litert":
        if args.board != "host":
            raise UsageError("--vs litert compares on the host: use --board host")
        from . import litert
        res = litert.bench_vs(args.model, n=args.reps)
        out.print(f"{res['model']}: ours {res['ours_us']:.2f} us, LiteRT {res['litert_us']:.2f} us, "
                  f"speedup {res['speedup']:.2f}x (medians, batch 1, one thread, interleaved)")
    elif what == "model":
        res = model_variants(args.model, args.board, args.exp, args.limit, err)
        out.print_json(json.dumps(res))
    elif what == "exp":
        from . import bench_exp
        res = bench_exp.run(args.board)
        bench_exp.print_table(res, out)
    else:
        raise UsageError("choose what to benchmark: `hilkit bench boards|model|exp --help`")
    _write(args.json, res)
    return 0
