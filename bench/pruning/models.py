"""Pruned digits-cnn-wide models on the boards: instructions per inference, agreement, accuracy.

    .venv/bin/python bench/pruning/models.py [--boards all | B ...] [--out bench/pruning/results]

Each model file goes through the normal path (hilkit.host.run.run: generate C, build, run the 360
test samples on the board, compare with the float32 reference). On the first board (mps2-an386 by
default) every model runs, and the sparse one also with the sparse kernel switched off
(codegen/passes.py crossover densities set to 0), to show what the kernel choice buys; structured pruning's
cut in instructions per inference is set against its cut in MACs. On the other boards the
unpruned, the 80 %-L1 and the sparse model run, for agreement with the reference.
Models come from accuracy.py's workdir (seed 0); missing ones are trained here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import model_name  # noqa: E402

SPARSE_DENSITY = 0.1
MODELS = {  # label -> (recipe kwargs, file name)
    "unpruned": ({}, model_name(None, 0.0)),
    "l1-50": ({"prune": "l1", "prune_fraction": 0.5}, model_name("l1", 0.5)),
    "l1-80": ({"prune": "l1", "prune_fraction": 0.8}, model_name("l1", 0.8)),
    "l1-90": ({"prune": "l1", "prune_fraction": 0.9}, model_name("l1", 0.9)),
    "sparse-10": ({"density": SPARSE_DENSITY}, "wide-density-10-s0.npz"),
}
ALL_BOARDS_MODELS = ("unpruned", "l1-80", "sparse-10")
KEYS = ("accuracy", "reference_accuracy", "top1_agreement", "max_abs_diff", "instructions_per_inference",
        "instructions_identical", "macs", "flash_bytes", "ram_bytes", "arena_bytes", "runtime")


def ensure_models(workdir: Path) -> dict[str, Path]:
    from hilkit.models.recipes import RECIPES
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, (kw, name) in MODELS.items():
        path = workdir / name
        if not path.is_file():
            RECIPES["digits-cnn-wide"](path, seed=0, **kw)
        out[label] = path
    return out


def run_one(path: Path, board: str, workdir: Path, crossover: float | None = None) -> dict:
    from hilkit.codegen import passes
    from hilkit.host.run import run

    saved = passes.SPARSE_CROSSOVER, passes.SPARSE_CROSSOVER_NEON
    if crossover is not None:
        passes.SPARSE_CROSSOVER = passes.SPARSE_CROSSOVER_NEON = crossover
    try:
        t0 = time.perf_counter()
        rep = run(path, board, workdir=workdir)
    finally:
        passes.SPARSE_CROSSOVER, passes.SPARSE_CROSSOVER_NEON = saved
    res = {k: rep.get(k) for k in KEYS}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def kernels_of(path: Path) -> list[str]:
    """The conv kernels the code generator picks for this model (its layer ops after the passes)."""
    from hilkit.codegen import ir, passes
    from hilkit.models import modelfile
    g = passes.run_default(ir.from_model(modelfile.load(path)))
    return [n.op for n in g.nodes if n.op.startswith("conv2d")]


def markdown(res: dict) -> str:
    first = res["first_board"]
    lines = [f"# digits-cnn-wide models on {first} (360 test samples each)\n",
             "| model | conv kernels | MACs | instructions / inference | instr / MAC | accuracy | reference | "
             "top-1 agreement | max abs diff | flash | RAM |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in res["first"].items():
        lines.append(f"| {label} | {', '.join(r['kernels'])} | {r['macs']} | {r['instructions_per_inference']:,.0f} | "
                     f"{r['instructions_per_inference'] / r['macs']:.2f} | {r['accuracy'] * 100:.2f} % | "
                     f"{r['reference_accuracy'] * 100:.2f} % | {r['top1_agreement'] * 100:.2f} % | "
                     f"{r['max_abs_diff']:.1e} | {r['flash_bytes']} | {r['ram_bytes']} |")
    lines += ["", "Structured pruning (L1, while training) against the unpruned model:", "",
              "| model | MAC cut | instruction cut | instruction cut / MAC cut |", "|---|---|---|---|"]
    for label, c in res["structured"].items():
        lines.append(f"| {label} | {c['mac_cut']:.1%} | {c['insn_cut']:.1%} | {c['ratio']:.3f} |")
    s = res["sparse"]
    lines += ["", f"Sparse model ({SPARSE_DENSITY:.0%} conv weight density): {s['sparse_insns']:,.0f} instructions "
              f"with the sparse kernel chosen by codegen, {s['dense_insns']:,.0f} forced dense: "
              f"{s['speedup']:.2f}x.", ""]
    if res.get("boards"):
        lines += ["# Agreement with the float32 reference on every board\n",
                  "| board | model | accuracy | top-1 agreement | max abs diff | instructions / inference |",
                  "|---|---|---|---|---|---|"]
        for board, models in res["boards"].items():
            for label, r in models.items():
                ins = r["instructions_per_inference"]
                lines.append(f"| {board} | {label} | {r['accuracy'] * 100:.2f} % | {r['top1_agreement'] * 100:.2f} % | "
                             f"{r['max_abs_diff']:.1e} | {'-' if ins is None else f'{ins:,.0f}'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from hilkit.host import boards as hk_boards

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="*", default=["mps2-an386"],
                    help="boards to run on ('all': host and every board with a QEMU twin); the first gets every model")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--workdir", default="out/bench-pruning")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    boards = args.boards
    if boards == ["all"]:
        boards = ["mps2-an386"] + [b.id for b in hk_boards.list_boards()
                                   if b.id != "mps2-an386" and (b.runtime == "host" or b.qemu is not None)]
    paths = ensure_models(work / "models")
    first = boards[0]
    res = {"first_board": first, "first": {}, "boards": {}}
    for label, path in paths.items():
        r = run_one(path, first, work / "run")
        r["kernels"] = kernels_of(path)
        res["first"][label] = r
        print(f"{first} {label}: {r}", flush=True)
    base = res["first"]["unpruned"]
    res["structured"] = {}
    for label in ("l1-50", "l1-80", "l1-90"):
        r = res["first"][label]
        mac_cut = 1 - r["macs"] / base["macs"]
        insn_cut = 1 - r["instructions_per_inference"] / base["instructions_per_inference"]
        res["structured"][label] = {"mac_cut": mac_cut, "insn_cut": insn_cut, "ratio": insn_cut / mac_cut}
    dense = run_one(paths["sparse-10"], first, work / "run-dense", crossover=0.0)
    res["sparse"] = {"sparse_insns": res["first"]["sparse-10"]["instructions_per_inference"],
                     "dense_insns": dense["instructions_per_inference"], "dense_run": dense}
    res["sparse"]["speedup"] = res["sparse"]["dense_insns"] / res["sparse"]["sparse_insns"]
    for board in boards[1:]:
        res["boards"][board] = {}
        for label in ALL_BOARDS_MODELS:
            r = run_one(paths[label], board, work / "run")
            res["boards"][board][label] = r
            print(f"{board} {label}: {r}", flush=True)
    res["boards"] = {first: {k: res["first"][k] for k in ALL_BOARDS_MODELS}, **res["boards"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "models.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
