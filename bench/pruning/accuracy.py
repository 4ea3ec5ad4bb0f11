"""Accuracy and training cost of filter pruning on digits-cnn-wide.

    .venv/bin/python bench/pruning/accuracy.py [--seeds 0 1 2] [--out bench/pruning/results]

Trains digits-cnn-wide (numpy reference, one BLAS thread) unpruned and with 50, 80 and 90 % of
each conv layer's filters pruned while training, ranked by L1 norm, mean activation and at random,
for each seed; and the prune-then-retrain baseline (L1) at the same fractions. Records test
accuracy (the written model file through the float32 reference), filters kept, forward MACs per
inference and training MACs. Writes accuracy.json, accuracy.md and accuracy.png; the seed-0 model
files stay in --workdir for models.py.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

METHODS = ("l1", "mean-act", "random")
FRACTIONS = (0.5, 0.8, 0.9)


def model_name(method: str | None, fraction: float, schedule: str = "while-training", seed: int = 0) -> str:
    if not method:
        return f"wide-s{seed}.npz"
    tag = "pwt" if schedule == "while-training" else "ptr"
    return f"wide-{method}-{int(round(fraction * 100))}-{tag}-s{seed}.npz"


def train(workdir: Path, method, fraction, schedule="while-training", seed=0) -> dict:
    from hilkit.models.recipes import RECIPES
    path = workdir / model_name(method, fraction, schedule, seed)
    kw = {"seed": seed}
    if method:
        kw.update(prune=method, prune_fraction=fraction, prune_schedule=schedule)
    t0 = time.perf_counter()
    s = RECIPES["digits-cnn-wide"](path, **kw)
    return {"method": method or "none", "fraction": fraction, "schedule": schedule if method else "none",
            "seed": seed, "test_accuracy": s["test_accuracy"], "filters": s["pruning_filters"],
            "forward_macs": s["forward_macs"], "training_macs": s["pruning_training_macs"],
            "seconds": round(time.perf_counter() - t0, 2), "path": str(path)}


def summarize(runs: list[dict]) -> dict:
    def acc(method, fraction, schedule):
        v = [r["test_accuracy"] for r in runs if r["method"] == method and r["fraction"] == fraction
             and r["schedule"] == schedule]
        return (float(np.mean(v)), float(np.std(v)), len(v)) if v else None

    def macs(method, fraction, schedule):
        v = [r["training_macs"] for r in runs if r["method"] == method and r["fraction"] == fraction
             and r["schedule"] == schedule]
        return float(np.mean(v)) if v else None

    base = acc("none", 0.0, "none")
    table = {"none": {"0": base}}
    for m in METHODS:
        table[m] = {str(f): acc(m, f, "while-training") for f in FRACTIONS}
        table[m]["0"] = base
    ptr = {str(f): acc("l1", f, "then-retrain") for f in FRACTIONS}
    cost = {str(f): {"while_training": macs("l1", f, "while-training"), "then_retrain": macs("l1", f, "then-retrain")}
            for f in FRACTIONS}
    for f in cost.values():
        f["saving"] = 1 - f["while_training"] / f["then_retrain"] if f["then_retrain"] else None
    drop = {str(f): (base[0] - table["l1"][str(f)][0]) * 100 for f in FRACTIONS}
    return {"accuracy": table, "then_retrain_l1": ptr, "training_macs_l1": cost, "l1_drop_points": drop,
            "unpruned_training_macs": macs("none", 0.0, "none")}


def markdown(summary: dict, runs: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in runs})
    fr = ["0"] + [str(f) for f in FRACTIONS]
    lines = [f"# digits-cnn-wide: test accuracy vs filters pruned while training (mean +- std over seeds {seeds})\n",
             "| ranking | " + " | ".join(f"{float(f):.0%}" for f in fr) + " |", "|---|" + "---|" * len(fr)]
    for m in METHODS:
        cells = [f"{v[0] * 100:.2f} +- {v[1] * 100:.2f}" for v in (summary["accuracy"][m][f] for f in fr)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    ptr = summary["then_retrain_l1"]
    lines.append("| l1, prune then retrain | - | " + " | ".join(
        f"{ptr[str(f)][0] * 100:.2f} +- {ptr[str(f)][1] * 100:.2f}" for f in FRACTIONS) + " |")
    filt = {r["fraction"]: r["filters"] for r in runs if r["method"] == "l1" and r["seed"] == seeds[0]
            and r["schedule"] == "while-training"}
    fmacs = {r["fraction"]: r["forward_macs"] for r in runs if r["method"] in ("l1", "none") and r["seed"] == seeds[0]}
    lines += ["", "| pruned | filters (conv1, conv2) | MACs per inference | training MACs, while training | "
              "prune then retrain | saving |", "|---|---|---|---|---|---|"]
    for f in FRACTIONS:
        c = summary["training_macs_l1"][str(f)]
        lines.append(f"| {f:.0%} | {filt.get(f)} | {fmacs.get(f)} | {c['while_training']:.3e} | "
                     f"{c['then_retrain']:.3e} | {c['saving']:.1%} |")
    lines.append(f"\nUnpruned: MACs per inference {fmacs.get(0.0)}, training MACs "
                 f"{summary['unpruned_training_macs']:.3e}. L1 accuracy drop (points): "
                 + ", ".join(f"{float(f):.0%}: {d:.2f}" for f, d in summary["l1_drop_points"].items()) + "\n")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fr = [0.0, *FRACTIONS]
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, style in zip(METHODS, ("o-", "s-", "^-")):
        vals = [summary["accuracy"][m]["0" if f == 0 else str(f)] for f in fr]
        ax.errorbar([f * 100 for f in fr], [v[0] * 100 for v in vals], yerr=[v[1] * 100 for v in vals],
                    fmt=style, capsize=3, label=f"{m} (while training)")
    ptr = summary["then_retrain_l1"]
    ax.errorbar([f * 100 for f in FRACTIONS], [ptr[str(f)][0] * 100 for f in FRACTIONS],
                yerr=[ptr[str(f)][1] * 100 for f in FRACTIONS], fmt="x--", capsize=3, label="l1, prune then retrain")
    ax.set_xlabel("filters pruned per conv layer (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits-cnn-wide: pruning while training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--workdir", default="out/bench-pruning/models")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        runs.append(train(work, None, 0.0, seed=seed))
        for m in METHODS:
            for f in FRACTIONS:
                runs.append(train(work, m, f, seed=seed))
        for f in FRACTIONS:
            runs.append(train(work, "l1", f, "then-retrain", seed=seed))
        print(f"seed {seed}: " + ", ".join(f"{r['method']}/{r['fraction']}/{r['schedule'][:5]} "
                                            f"{r['test_accuracy'] * 100:.2f}" for r in runs if r["seed"] == seed),
              flush=True)
    summary = summarize(runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    (out / "accuracy.md").write_text(markdown(summary, runs))
    plot(summary, out / "accuracy.png")
    print(markdown(summary, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
