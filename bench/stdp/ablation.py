"""The residual ablation of ReStoCNet on digits: 1-3 conv layers, with and without residual
connections, kernels learned by HB-STDP or left random (the control), several seeds.

    .venv/bin/python bench/stdp/ablation.py [--seeds 0 1 2] [--out bench/stdp/results]

Writes ablation.json and ablation.md. Every run reads out the last conv layer only, so a deeper
layer that learned nothing useful costs accuracy (the paper's claim is that the residual path lets
the deeper layers learn)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hilkit.models import restocnet
from hilkit.models.stdp import RandomKernels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    rows = []
    for rule_name, rule in (("HB-STDP", restocnet.HBSTDP()), ("random", RandomKernels(1))):
        for name, cfg in restocnet.ablation_configs(rule).items():
            accs, runs = [], []
            for seed in args.seeds:
                t0 = time.perf_counter()
                r = restocnet.evaluate(cfg, seed)
                r["seconds"] = round(time.perf_counter() - t0, 1)
                runs.append(r)
                accs.append(r["test_accuracy"])
                print(f"{rule_name:8s} {name:22s} seed {seed}: {r['test_accuracy'] * 100:.2f} %  "
                      f"spikes/layer {[round(s) for s in r['spikes_per_layer']]}  {r['seconds']} s", flush=True)
            rows.append({"rule": rule_name, "config": name, "layers": [dict(e) for e in cfg.layers],
                         "seeds": args.seeds, "accuracy": accs, "mean": float(np.mean(accs)),
                         "std": float(np.std(accs)), "runs": runs})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| kernels | network | test accuracy, mean ± std (%) | per seed (%) | spikes per layer (seed 0) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['config']} | {r['mean'] * 100:.2f} ± {r['std'] * 100:.2f} | "
                     f"{', '.join(f'{a * 100:.1f}' for a in r['accuracy'])} | "
                     f"{', '.join(str(round(s)) for s in r['runs'][0]['spikes_per_layer'])} |")
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
