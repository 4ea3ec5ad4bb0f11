"""The two STDP recipes over seeds, each beside its random-kernel control (the recipe's summary
key "random_kernels": the same network, threshold calibration and readout, kernels left random).

    OMP_NUM_THREADS=1 .venv/bin/python bench/stdp/recipes.py [--seeds 0 1 2] [--out bench/stdp/results]

Writes recipes.json (every summary, as `hilkit train RECIPE --seed S --json` prints it) and
recipes.md (the table of docs/stdp.md); model files go to out/stdp-bench/.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from hilkit.models import recipes

NAMES = ("digits-stdp", "digits-restocnet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    work = Path("out/stdp-bench")
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for name in NAMES:
        for seed in args.seeds:
            s = recipes.RECIPES[name](work / f"{name}-s{seed}.npz", seed=seed)
            runs.append(s)
            print(name, seed, f"learned {s['test_accuracy'] * 100:.2f} %  random {s['random_kernels']['test_accuracy'] * 100:.2f} %",
                  flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipes.json").write_text(json.dumps(
        {"command": "bench/stdp/recipes.py --seeds " + " ".join(map(str, args.seeds)), "runs": runs}, indent=1) + "\n")
    lines = ["| recipe | kernels | test accuracy per seed (%) | mean (%) | spikes / inference (mean) |",
             "|---|---|---|---|---|"]
    for name in NAMES:
        rs = [r for r in runs if r["recipe"] == name]
        for label, get in (("learned", lambda r: r), ("random (control)", lambda r: r["random_kernels"])):
            accs = [get(r)["test_accuracy"] for r in rs]
            spikes = np.mean([get(r)["spikes_per_inference"] for r in rs])
            lines.append(f"| {name} | {label} | {' / '.join(f'{a * 100:.2f}' for a in accs)} | "
                         f"{np.mean(accs) * 100:.2f} | {spikes:.0f} |")
    (args.out / "recipes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
