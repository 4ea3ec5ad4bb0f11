"""Instructions per MAC of the conv and dense kernels on a board (exact, under QEMU).

    .venv/bin/python bench/pruning/kernels.py [--board mps2-an386] [--out bench/pruning/results]

Every kernel runs as a compiled case of kbench.c (constant shapes, the way the generated model.c
calls it) on the layer shapes of digits-cnn, digits-cnn-wide and its pruned versions, plus a
larger layer; outputs are checked against numpy. MACs are counted as the code generator counts
them (output size x C x k x k, zero-padding taps included). Variants:
  conv:  naive (hk_conv2d_f32, the kit's original loop), blocked (hk_conv2d_blocked_f32: the
         target's fastest path), blocked_c (its portable C path);
  dense: naive (the kit's original two-accumulator loop), rowmajor (hk_dense_f32), blocked
         (hk_dense_blocked_f32), blocked_c (its portable C path).
Writes kernels-<board>.json and kernels-<board>.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kbench import ConvCase, DenseCase, KernelBench  # noqa: E402

CONV_SHAPES = {  # label -> C, H, W, F (3x3, stride 1, same, ReLU fused)
    "digits-cnn conv1": (1, 8, 8, 8), "digits-cnn conv2": (8, 4, 4, 16),
    "wide conv1": (1, 8, 8, 32), "wide conv2": (32, 4, 4, 64),
    "wide l1-50 conv2": (16, 4, 4, 32), "wide l1-80 conv2": (6, 4, 4, 13),
    "16x16 layer": (16, 16, 16, 32),
}
DENSE_SHAPES = {"wide dense": (256, 10), "digits-cnn dense": (64, 10), "256 -> 64": (256, 64)}
CONV_KINDS = ("naive", "blocked", "blocked_c")
DENSE_KINDS = ("naive", "rowmajor", "blocked", "blocked_c")


def run(board: str, workdir: Path, seed: int = 0) -> dict:
    from hilkit.models import functional as F

    cases, index = [], {}
    for label, (c, h, w, f) in CONV_SHAPES.items():
        for kind in CONV_KINDS:
            index[(label, kind)] = len(cases)
            cases.append(ConvCase(kind, c, h, w, f))
    for label, (n_in, n_out) in DENSE_SHAPES.items():
        for kind in DENSE_KINDS:
            index[(label, kind)] = len(cases)
            cases.append(DenseCase(kind, n_in, n_out))
    rng = np.random.default_rng(seed)
    rows = []
    with KernelBench(board, workdir, cases=cases) as kb:
        for label, (c, h, w, f) in CONV_SHAPES.items():
            x = rng.standard_normal((c, h, w)).astype(np.float32)
            wt = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
            b = rng.standard_normal(f).astype(np.float32)
            ref = np.maximum(F.conv2d(x[None], wt, b)[0], 0)
            row = {"layer": label, "op": "conv2d", "shape": [c, h, w, f], "macs": cases[index[(label, "naive")]].macs()}
            for kind in CONV_KINDS:
                y, n = kb.run(index[(label, kind)], x, wt, b)
                assert np.max(np.abs(y - ref)) < 1e-4, (label, kind)
                row[kind] = n
            rows.append(row)
        for label, (n_in, n_out) in DENSE_SHAPES.items():
            x = rng.standard_normal(n_in).astype(np.float32)
            wt = rng.standard_normal((n_out, n_in)).astype(np.float32)
            b = rng.standard_normal(n_out).astype(np.float32)
            row = {"layer": label, "op": "dense", "shape": [n_in, n_out], "macs": n_in * n_out}
            for kind in DENSE_KINDS:
                y, n = kb.run(index[(label, kind)], x, wt, b)
                assert np.max(np.abs(y - (wt @ x + b))) < 1e-4, (label, kind)
                row[kind] = n
            rows.append(row)
    return {"board": board, "rows": rows}


def markdown(res: dict) -> str:
    lines = [f"# Kernel instructions per MAC on {res['board']} (compiled cases, exact QEMU counts)\n",
             "| layer | shape | MACs | " + " | ".join(CONV_KINDS) + " | speedup |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if r["op"] != "conv2d":
            continue
        c, h, w, f = r["shape"]
        per = [r[k] / r["macs"] if r[k] else float("nan") for k in CONV_KINDS]
        lines.append(f"| {r['layer']} | {c}x{h}x{w} -> {f} | {r['macs']} | " + " | ".join(f"{p:.2f}" for p in per)
                     + f" | {per[0] / per[1]:.1f}x |")
    lines += ["", "| dense layer | in -> out | MACs | " + " | ".join(DENSE_KINDS) + " |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if r["op"] != "dense":
            continue
        per = [r[k] / r["macs"] if r[k] else float("nan") for k in DENSE_KINDS]
        lines.append(f"| {r['layer']} | {r['shape'][0]} -> {r['shape'][1]} | {r['macs']} | "
                     + " | ".join(f"{p:.2f}" for p in per) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--workdir", default="out/bench-pruning")
    args = ap.parse_args(argv)
    res = run(args.board, Path(args.workdir))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"kernels-{args.board}.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / f"kernels-{args.board}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
