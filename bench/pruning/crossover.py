"""Dense blocked vs sparse conv on one board: instructions per call against weight density.

    .venv/bin/python bench/pruning/crossover.py [--board mps2-an386] [--out bench/pruning/results]

For each conv shape (the layers of digits-cnn-wide and a larger one) it runs the dense blocked
kernel once (its cost does not depend on the zeros) and the sparse kernel at each density, all as
compiled cases (constant shapes, as in a generated model.c), checks every output against numpy,
and reports the density below which the sparse kernel takes fewer instructions (linear
interpolation between the measured points) and the speedup at 10 % density. Writes
crossover.json and crossover.md; codegen/passes.py's SPARSE_CROSSOVER is set from this.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kbench import ConvCase, KernelBench  # noqa: E402

SHAPES = [(32, 4, 4, 64), (1, 8, 8, 32), (16, 8, 8, 32)]   # C, H, W, F (3x3, stride 1, same, relu)
DENSITIES = [1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


def crossover(densities, sparse_counts, dense_count) -> float | None:
    """Highest density at which the sparse kernel is no slower, interpolated linearly."""
    pts = sorted(zip(densities, sparse_counts))
    best = None
    for (d0, s0), (d1, s1) in zip(pts, pts[1:]):
        if s0 <= dense_count and s1 > dense_count:
            best = d0 + (d1 - d0) * (dense_count - s0) / (s1 - s0)
    if best is None and pts and pts[-1][1] <= dense_count:
        best = pts[-1][0]
    return best


def run(board: str, workdir: Path, seed: int = 0) -> dict:
    from hilkit.models import functional as F

    cases = []
    for (c, h, w, f) in SHAPES:
        cases.append(ConvCase("blocked", c, h, w, f))
        cases.append(ConvCase("sparse", c, h, w, f))
    rng = np.random.default_rng(seed)
    rows = []
    with KernelBench(board, workdir, cases=cases) as kb:
        for si, (c, h, w, f) in enumerate(SHAPES):
            x = rng.standard_normal((c, h, w)).astype(np.float32)
            wt = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
            b = rng.standard_normal(f).astype(np.float32)
            dense_case, sparse_case = cases[2 * si], cases[2 * si + 1]
            y, dense_n = kb.run(2 * si, x, wt, b)
            assert np.abs(y - np.maximum(F.conv2d(x[None], wt, b)[0], 0)).max() < 1e-4
            sparse_n = []
            for d in DENSITIES:
                wd = wt * (rng.random(wt.shape) < d)
                y, n = kb.run(2 * si + 1, x, wd, b)
                err = float(np.abs(y - np.maximum(F.conv2d(x[None], wd, b)[0], 0)).max())
                assert err < 1e-4, (c, h, w, f, d, err)
                sparse_n.append(n)
            macs = dense_case.macs()
            x_over = crossover(DENSITIES, sparse_n, dense_n) if dense_n else None
            at10 = dense_n / sparse_n[DENSITIES.index(0.1)] if dense_n else None
            rows.append({"shape": {"c": c, "h": h, "w": w, "f": f, "k": 3}, "macs": macs,
                         "dense_insns": dense_n, "dense_insns_per_mac": dense_n / macs if dense_n else None,
                         "densities": DENSITIES, "sparse_insns": sparse_n,
                         "sparse_insns_per_nonzero_mac": [n / (macs * d) if n else None
                                                          for n, d in zip(sparse_n, DENSITIES)],
                         "crossover_density": x_over, "speedup_at_10pct": at10})
            del dense_case, sparse_case
    xs = [r["crossover_density"] for r in rows if r["crossover_density"] is not None]
    return {"board": board, "shapes": rows, "crossover_density_min": min(xs) if xs else None,
            "crossover_density_median": float(np.median(xs)) if xs else None}


def markdown(res: dict) -> str:
    lines = [f"# Dense blocked vs sparse conv on {res['board']} (instructions per call)\n",
             "| C x H x W -> F (3x3) | dense blocked (/MAC) | " +
             " | ".join(f"sparse {d:.0%}" for d in DENSITIES) + " | crossover | speedup at 10 % |",
             "|---|---|" + "---|" * len(DENSITIES) + "---|---|"]
    for r in res["shapes"]:
        s = r["shape"]
        x = "never" if r["crossover_density"] is None else f"{r['crossover_density']:.0%}"
        lines.append(f"| {s['c']}x{s['h']}x{s['w']} -> {s['f']} | {r['dense_insns']} ({r['dense_insns_per_mac']:.2f}) | "
                     + " | ".join(str(n) for n in r["sparse_insns"])
                     + f" | {x} | {r['speedup_at_10pct']:.2f}x |")
    lines.append(f"\nCrossover density (sparse kernel wins below it): min {res['crossover_density_min']:.0%}, "
                 f"median {res['crossover_density_median']:.0%} over the shapes where it wins at all.\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--workdir", default="out/bench-pruning")
    args = ap.parse_args(argv)
    res = run(args.board, Path(args.workdir))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"crossover-{args.board}.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / f"crossover-{args.board}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
