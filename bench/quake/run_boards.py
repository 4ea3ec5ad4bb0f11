"""`hilkit run` of the QuAKE models with every exp variant on every QEMU board: agreement of each
board's outputs with the reference of the same variant (`reference.forward(model, x, exp)`).

    .venv/bin/python bench/quake/run_boards.py --json bench/quake/results/run_boards.json
        [--model out/quake/digits-vit.npz ...] [--board mps2-an386 ...] [--limit N]

Prints a markdown table (one row per model, board and variant) and writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KEYS = ("model", "board", "exp", "samples", "accuracy", "reference_accuracy", "top1_agreement", "max_abs_diff",
        "instructions_per_inference", "instructions_identical", "latency_us", "flash_bytes", "ram_bytes")


def qemu_boards() -> list[str]:
    from hilkit.host import boards
    return [b.id for b in boards.list_boards() if b.can_emulate and b.runtime != "host"]


def table(rows: list[dict]) -> str:
    head = ("| model | board | exp | accuracy | ref. accuracy | top-1 agreement | max abs diff | "
            "insns / inference |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        insns = r["instructions_per_inference"]
        lines.append(f"| {r['model']} | {r['board']} | {r['exp']} | {r['accuracy'] * 100:.2f} % | "
                     f"{r['reference_accuracy'] * 100:.2f} % | {r['top1_agreement'] * 100:.1f} % | "
                     f"{r['max_abs_diff']:.2e} | {'n/a' if insns is None else f'{insns:,.0f}'} |")
    return head + "\n".join(lines)


def main(argv=None) -> int:
    from hilkit.host import run as hk_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", type=Path)
    ap.add_argument("--board", action="append")
    ap.add_argument("--exp", nargs="+", default=["libm", "quake1", "quake2"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workdir", type=Path, default=Path("out/quake/run"))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    models = a.model or [Path("out/quake/digits-vit.npz"), Path("out/quake/digits-gelu-cnn.npz")]
    rows = []
    for model in models:
        for board in a.board or qemu_boards():
            for exp in a.exp:
                r = hk_run.run(model, board, exp=exp, limit=a.limit, workdir=a.workdir)
                rows.append({k: r.get(k) for k in KEYS})
                print(f"{r['model']} {board} {exp}: agreement {r['top1_agreement'] * 100:.1f} %, "
                      f"max abs diff {r['max_abs_diff']:.2e}", file=sys.stderr, flush=True)
                if a.json:
                    a.json.parent.mkdir(parents=True, exist_ok=True)
                    a.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    bad = [r for r in rows if r["top1_agreement"] < 1.0]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
