"""Spiking-network measurements for docs/snn.md: accuracy vs time steps (hard and soft reset, beside
the ANN), the STDB and spike-count recipes, and the fixed-point SNNs on boards under QEMU (spike
agreement over the whole test split, instructions vs synaptic operations, op-level energy).

    .venv/bin/python bench/snn/snn_bench.py accuracy          # ~1 min: table + accuracy_vs_T.png
    .venv/bin/python bench/snn/snn_bench.py variants          # int8 weights, rate coding, LIF
    .venv/bin/python bench/snn/snn_bench.py recipes           # ~2 min: trains the three recipes
    .venv/bin/python bench/snn/snn_bench.py boards            # ~3 min: 360 samples x 3 boards x models
    .venv/bin/python bench/snn/snn_bench.py seeds 0 1 2       # STDB and spike-count loss, before/after the
                                                              # surrogate fix, over seeds
    .venv/bin/python bench/snn/snn_bench.py beta 0 1 2        # ~4 min: STDB beta sweep on a validation split
    .venv/bin/python bench/snn/snn_bench.py rmp 0 1 2         # ~4 min: accuracy vs T, soft/hard, zero/theta/2 start
    .venv/bin/python bench/snn/snn_bench.py all

Results go to bench/snn/results/*.json (and the plot beside this file); models and firmware
to out/snn-bench/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = Path("out/snn-bench")
STEPS = (4, 8, 16, 32, 64)
BOARDS = ("mps2-an386", "pico", "rpi4")


def _save(name: str, obj) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(obj, indent=1) + "\n")
    return p


def _load(name: str):
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


# ---------------------------------------------------------------- accuracy vs T
def accuracy(seed: int = 0) -> dict:
    """Converted CNN (avg pool) and MLP: integer-reference accuracy, spikes, synops for every T."""
    out = {"seed": seed, "steps": list(STEPS), "nets": {arch: _steps_table(arch, seed) for arch in ("cnn", "mlp")}}
    _save("accuracy_vs_T", out)
    plot(out)
    return out


def _steps_table(arch: str, seed: int) -> dict:
    """One converted net (percentile 99.9 balancing): accuracy, spikes, synops for every T, reset
    (soft, hard) and membrane start (theta/2, 0)."""
    from hilkit.models import snn
    from hilkit.models.snn_convert import convert, quantize
    from hilkit.models.snn_recipes import digits_data, train_ann

    X_train, _, X_test, y_test = digits_data(arch)
    ann, ann_acc = train_ann(arch, seed)
    fsnn = convert(ann, X_train, X_train.shape[1:], percentile=99.9)
    rows = []
    for v_init in ("half", "zero"):
        for reset in ("soft", "hard"):
            for T in STEPS:
                attrs, params = quantize(fsnn, timesteps=T, reset=reset, v_init=v_init)
                res = snn.simulate(attrs, params, X_test)
                spikes = sum(v for k, v in res.counters.items() if k.startswith("spikes_l"))
                rows.append({"reset": reset, "v_init": v_init, "timesteps": T,
                             "accuracy": float((res.output.argmax(1) == y_test).mean()),
                             "spikes": float(spikes.mean()), "synops": float(res.counters["synops"].mean())})
                print(f"{arch} seed {seed} {reset:4s} v_init {v_init} T={T:2d}: {rows[-1]['accuracy'] * 100:.2f} %  "
                      f"{rows[-1]['spikes']:.0f} spikes  {rows[-1]['synops']:.0f} synops", flush=True)
    return {"ann_accuracy": ann_acc, "lambdas": fsnn.lambdas, "rows": rows}


# ---------------------------------------------------------------- RMP-SNN replication
def rmp(seed_list) -> dict:
    """Accuracy vs T for soft (RMP-SNN) and hard reset from a zero membrane (RMP-SNN's setting)
    and from theta/2 (this kit's choice), per seed and the mean over seeds."""
    out = {"steps": list(STEPS), "seeds": list(seed_list), "nets": {}}
    for arch in ("cnn", "mlp"):
        per_seed = {str(s): _steps_table(arch, s) for s in seed_list}
        mean = []
        for i, r in enumerate(per_seed[str(seed_list[0])]["rows"]):
            mean.append({k: r[k] for k in ("reset", "v_init", "timesteps")}
                        | {k: float(np.mean([per_seed[str(s)]["rows"][i][k] for s in seed_list]))
                           for k in ("accuracy", "spikes", "synops")})
        out["nets"][arch] = {"ann_accuracy": float(np.mean([v["ann_accuracy"] for v in per_seed.values()])),
                             "mean": mean, "per_seed": per_seed}
        _save("rmp", out)
    return out


def plot(out: dict | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = out or _load("accuracy_vs_T")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (arch, title) in zip(axes, (("cnn", "digits CNN (avg pool) -> SNN"), ("mlp", "digits MLP -> SNN"))):
        net = out["nets"][arch]
        for v_init, reset, style in (("half", "soft", "o-C0"), ("half", "hard", "s-C3"),
                                     ("zero", "soft", "o:C0"), ("zero", "hard", "s:C3")):
            rows = [r for r in net["rows"] if r["reset"] == reset and r["v_init"] == v_init]
            ax.plot([r["timesteps"] for r in rows], [100 * r["accuracy"] for r in rows], style,
                    alpha=1.0 if v_init == "half" else 0.5, label=f"{reset} reset, u0 = {'theta/2' if v_init == 'half' else '0'}")
        ax.axhline(100 * net["ann_accuracy"], color="k", lw=1, label="ANN")
        ax.axhline(100 * net["ann_accuracy"] - 1, color="k", lw=0.5, ls=":", label="ANN - 1 pt")
        ax.set_xscale("log", base=2)
        ax.set_xticks(out["steps"], [str(t) for t in out["steps"]])
        ax.set_xlabel("time steps T")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), fixed-point reference")
    axes[0].set_ylim(75, 100)
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    path = HERE / "accuracy_vs_T.png"
    fig.savefig(path, dpi=120)
    return path


# ---------------------------------------------------------------- operator options
def variants(seed: int = 0) -> dict:
    """The converted CNN with the operator's other options: int8 weights, rate coding, LIF."""
    from hilkit.models import snn
    from hilkit.models.snn_convert import convert, quantize
    from hilkit.models.snn_recipes import digits_data, train_ann

    X_train, _, X_test, y_test = digits_data("cnn")
    ann, ann_acc = train_ann("cnn", seed)
    fsnn = convert(ann, X_train, (1, 8, 8), percentile=99.9)
    rows = []
    for label, opts in [("int16, direct, IF", {}), ("int8, direct, IF", {"weight_bits": 8}),
                        ("int16, rate (xorshift32), IF", {"coding": "rate"}),
                        ("int16, direct, LIF leak 1/16", {"neuron": "lif", "leak_shift": 4}),
                        ("int16, direct, LIF leak 1/64", {"neuron": "lif", "leak_shift": 6})]:
        for T in (8, 32, 128):
            attrs, params = quantize(fsnn, timesteps=T, reset="soft", **opts)
            res = snn.simulate(attrs, params, X_test)
            spikes = sum(v for k, v in res.counters.items() if k.startswith("spikes_l"))
            rows.append({"variant": label, "timesteps": T, "accuracy": float((res.output.argmax(1) == y_test).mean()),
                         "spikes": float(spikes.mean()), "synops": float(res.counters["synops"].mean())})
            print(rows[-1], flush=True)
    out = {"seed": seed, "ann_accuracy": ann_acc, "rows": rows}
    _save("variants", out)
    return out


# ---------------------------------------------------------------- recipes
def recipes(seed: int = 0) -> dict:
    from hilkit.models import data, modelfile, reference
    from hilkit.models.layers import Softmax
    from hilkit.models.network import Sequential
    from hilkit.models.recipes import RECIPES
    from hilkit.models.snn_recipes import train_ann

    WORK.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("digits-snn", "digits-snn-stdb", "digits-snn-sparse", "digits-cnn"):
        t0 = time.perf_counter()
        s = RECIPES[name](WORK / f"{name}.npz", seed=seed)
        s["wall_seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = s
        print(name, {k: s[k] for k in s if k in ("test_accuracy", "spikes_per_inference", "synops_per_inference",
                                                   "train_seconds")}, flush=True)
    # the ANN the spiking recipes convert, as a model file (for its instruction counts on boards)
    ann, acc = train_ann("cnn", seed)
    graph, arrays = Sequential([ann, Softmax()]).to_graph((1, 8, 8), name="digits-cnn-avg",
                                                          meta={"recipe": "snn_bench ANN (avg pool)"})
    modelfile.save(WORK / "digits-cnn-avg.npz", graph, arrays)
    _, _, x, y = data.digits_split()
    m = modelfile.load(WORK / "digits-cnn-avg.npz")
    out["digits-cnn-avg"] = {"test_accuracy": float((reference.predict(m, x) == y).mean())}
    _save("recipes", out)
    return out


# ---------------------------------------------------------------- boards
def run_board(model: Path, board_id: str) -> dict:
    """Every test sample through the board: outputs, counters, instruction counts; the SNN keys."""
    from hilkit.host import protocol, runner
    from hilkit.host.compile import compile_model
    from hilkit.host.snn_report import snn_metrics
    from hilkit.models import data, modelfile, reference

    c = compile_model(model, board_id, WORK / "fw" / f"{model.stem}-{board_id}")
    m = modelfile.load(c.out_dir / "model.npz")
    _, _, x, y = data.digits_split()
    x = x.reshape((-1,) + tuple(m.input_shape))
    outs, extras, insns = [], [], []
    t0 = time.perf_counter()
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel())
            outs.append(r.outputs)
            extras.append(r.extra)
            insns += target.instruction_counts() or []
    outs = np.stack(outs)
    ref = reference.forward(m, x)
    rep = {"model": model.stem, "board": board_id, "samples": len(x), "seconds": round(time.perf_counter() - t0, 1),
           "accuracy": float((outs.argmax(1) == y).mean()),
           "reference_accuracy": float((ref.argmax(1) == y).mean()),
           "top1_agreement": float((outs.argmax(1) == ref.argmax(1)).mean()),
           "max_abs_diff": float(np.abs(outs - ref).max()),
           "instructions_per_inference": float(np.mean(insns)) if insns else None,
           "instructions_min_max": [int(min(insns)), int(max(insns))] if insns else None,
           "macs": c.manifest["macs"], "flash_ram": None}
    rep.update(snn_metrics(c.manifest, m, x, extras, instructions=insns))
    return rep


def boards_run(models=("digits-snn", "digits-snn-stdb", "digits-snn-sparse", "digits-cnn", "digits-cnn-avg"),
               board_ids=BOARDS) -> list[dict]:
    reps = []
    for name in models:
        for b in board_ids:
            r = run_board(WORK / f"{name}.npz", b)
            reps.append(r)
            keys = ("accuracy", "top1_agreement", "spike_agreement", "instructions_per_inference",
                    "synops_per_inference", "energy_op_uj")
            print(name, b, {k: r.get(k) for k in keys}, r.get("instructions_vs_synops"), flush=True)
            _save("boards", reps)
    return reps


# ---------------------------------------------------------------- seeds
# "before": the surrogate as this kit first had it (dt counted from step 0, so neurons that never
# fired got the largest slope) with beta 0.3; "after": the recipes as they are (the authors'
# convention, beta from the validation sweep below).
VARIANTS = {"before": {"before_first_spike": "from_start", "beta": 0.3}, "after": {}}


def seeds(seed_list, variants=tuple(VARIANTS)) -> dict:
    """STDB and STDB + spike-count loss (the recipes' settings) for several seeds, before and
    after the surrogate fix."""
    from dataclasses import replace

    from hilkit.models.snn_recipes import RECIPES

    out = _load("seeds") or {}
    out = out if "variants" in out else {"variants": {}}
    for variant in variants:
        table = out["variants"].setdefault(variant, {"options": {}, "seeds": {}})
        for seed in seed_list:
            row = {}
            for name in ("digits-snn-stdb", "digits-snn-sparse"):
                recipe = replace(RECIPES[name], **VARIANTS[variant])
                table["options"][name] = {"beta": recipe.beta, "before_first_spike": recipe.before_first_spike,
                                          "spike_weight": recipe.spike_weight, "epochs": recipe.stdb_epochs}
                s = recipe(WORK / f"{name}-{variant}-seed{seed}.npz", seed=seed)
                row[name] = {k: s[k] for k in ("test_accuracy", "ann_test_accuracy", "spikes_per_inference",
                                               "synops_per_inference", "timesteps", "train_seconds")}
            table["seeds"][str(seed)] = row
            print(variant, seed, row, flush=True)
            _save("seeds", out)
    return out


# ---------------------------------------------------------------- beta on a validation split
BETAS = (0.01, 0.03, 0.1, 0.3, 1.0)
VAL_SPLIT = "train_test_split(X_train, test_size=0.2, stratify=y_train, random_state=1) of the digits training split"


def validation_data(arch: str = "cnn"):
    """(X_fit, y_fit, X_val, y_val): 20 % of the training split held out; the test split unused."""
    from hilkit.models.snn_recipes import digits_data
    from sklearn.model_selection import train_test_split

    X_train, y_train, _, _ = digits_data(arch)
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.2, stratify=y_train, random_state=1)
    return X_fit, y_fit, X_val, y_val


def beta_sweep(seed_list, betas=BETAS) -> dict:
    """STDB and spike-count recipes (their settings but beta) trained on 80 % of the training split,
    measured on the other 20 %. Choice, fixed before running: STDB takes the beta with the best mean
    validation accuracy; the spike-count loss the beta with the fewest mean validation spikes among
    those within 1 pt of that accuracy."""
    from hilkit.models import snn, snn_train
    from hilkit.models.snn_convert import convert, quantize
    from hilkit.models.snn_recipes import RECIPES, train_ann

    data = validation_data("cnn")
    X_fit, y_fit, X_val, y_val = data
    out = {"split": VAL_SPLIT, "fit": len(y_fit), "validation": len(y_val), "betas": list(betas),
           "seeds": list(seed_list), "runs": []}
    for seed in seed_list:
        ann, ann_val = train_ann("cnn", seed, data=data)
        fsnn = convert(ann, X_fit, X_fit.shape[1:], percentile=99.9)
        for name in ("digits-snn-stdb", "digits-snn-sparse"):
            r = RECIPES[name]
            for beta in betas:
                cfg = snn_train.STDBConfig(timesteps=r.timesteps, reset=r.reset, v_init=r.v_init, epochs=r.stdb_epochs,
                                           lr=r.lr, spike_weight=r.spike_weight, beta=beta,
                                           before_first_spike=r.before_first_spike)
                t0 = time.perf_counter()
                tuned, _ = snn_train.train(fsnn, X_fit, y_fit, cfg, np.random.default_rng(np.random.SeedSequence([seed, 2])))
                attrs, params = quantize(tuned, timesteps=r.timesteps, reset=r.reset, v_init=r.v_init)
                res = snn.simulate(attrs, params, X_val)
                spikes = sum(v for k, v in res.counters.items() if k.startswith("spikes_l"))
                out["runs"].append({"recipe": name, "seed": seed, "beta": beta, "ann_val_accuracy": ann_val,
                                    "val_accuracy": float((res.output.argmax(1) == y_val).mean()),
                                    "spikes": float(spikes.mean()), "synops": float(res.counters["synops"].mean()),
                                    "seconds": round(time.perf_counter() - t0, 1)})
                print(out["runs"][-1], flush=True)
                _save("beta_sweep", out)
    mean = {}
    for name in ("digits-snn-stdb", "digits-snn-sparse"):
        mean[name] = {str(b): {k: float(np.mean([r[k] for r in out["runs"] if r["recipe"] == name and r["beta"] == b]))
                               for k in ("val_accuracy", "spikes", "synops")} for b in betas}
    best = max(betas, key=lambda b: (mean["digits-snn-stdb"][str(b)]["val_accuracy"],
                                     -mean["digits-snn-stdb"][str(b)]["spikes"]))
    ref = mean["digits-snn-stdb"][str(best)]["val_accuracy"]
    ok = [b for b in betas if mean["digits-snn-sparse"][str(b)]["val_accuracy"] >= ref - 0.01]
    sparse = (min(ok, key=lambda b: mean["digits-snn-sparse"][str(b)]["spikes"]) if ok else
              max(betas, key=lambda b: mean["digits-snn-sparse"][str(b)]["val_accuracy"]))
    out["mean"] = mean
    out["choice"] = {"digits-snn-stdb": best, "digits-snn-sparse": sparse}
    _save("beta_sweep", out)
    print("choice", out["choice"], flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["accuracy", "plot", "variants", "recipes", "boards", "seeds", "beta", "rmp",
                                     "all"])
    ap.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--variant", choices=list(VARIANTS), nargs="+", default=list(VARIANTS),
                    help="seeds: which surrogate settings to run")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        if a.what in ("accuracy", "all"):
            accuracy()
        if a.what == "plot":
            print(plot())
        if a.what in ("variants", "all"):
            variants()
        if a.what in ("recipes", "all"):
            recipes()
        if a.what in ("boards", "all"):
            boards_run()
        if a.what in ("seeds", "all"):
            seeds(a.seeds, a.variant)
        if a.what in ("beta", "all"):
            beta_sweep(a.seeds)
        if a.what in ("rmp", "all"):
            rmp(a.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
