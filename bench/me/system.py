"""System-level measurements of the ME-LIF digits network (docs/me-neuron.md): accuracy against the
deterministic LIF network with the same weights, the device-variation table, and the neurons'
energy (ME devices against a digital CMOS LIF estimate).

    .venv/bin/python bench/me/system.py accuracy     # ~2 min: 3 ANN seeds x (LIF, ME over 5 fire seeds)
    .venv/bin/python bench/me/system.py variation    # ~5 min: device-level runs, corners and spreads
    .venv/bin/python bench/me/system.py energy       # ~20 s
    .venv/bin/python bench/me/system.py all

Results go to bench/me/results/{accuracy,variation,energy}.json.
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
FIRE_SEEDS = (0x9E3779B9, 1, 2, 3, 4)
RNG_SEEDS = (0, 1, 2)


def _save(name: str, obj) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(obj, indent=1) + "\n")
    return p


def _nets(seed: int):
    from hilkit.models import me_snn
    return me_snn.build(seed)


def _acc(out, y) -> float:
    return float((out.argmax(1) == y).mean())


def _stats(v) -> dict:
    v = np.asarray(v, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def accuracy(seeds=(0, 1, 2)) -> dict:
    from hilkit.models import me_snn, snn
    from hilkit.models.snn_recipes import digits_data

    _, _, X, y = digits_data("cnn")
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        (la, lp), (ma, mp), info = _nets(seed)
        lif = snn.simulate(la, lp, X)
        me = [me_snn.simulate(dict(ma, fire_seed=s), mp, X) for s in FIRE_SEEDS]
        dev_det = me_snn.simulate_device(ma, mp, X, deterministic=True)
        dev_sto = [me_snn.simulate_device(ma, mp, X, rng=np.random.default_rng(r)) for r in RNG_SEEDS]
        spikes = lambda r: float(sum(v.mean() for k, v in r.counters.items() if k.startswith("spikes_l")))  # noqa: E731
        rows.append({
            "seed": seed, "ann": info["ann_test_accuracy"], "leak_shift": info["leak_shift"],
            "lif_integer": _acc(lif.output, y), "lif_spikes": spikes(lif),
            "me_table": _stats([_acc(r.output, y) for r in me]), "me_spikes": _stats([spikes(r) for r in me]),
            "lif_device_float": _acc(dev_det.output, y),
            "me_device_float": _stats([_acc(r.output, y) for r in dev_sto]),
            "seconds": round(time.perf_counter() - t0, 1)})
        rows[-1]["me_minus_lif_pt"] = 100 * (rows[-1]["me_table"]["mean"] - rows[-1]["lif_integer"])
    out = {"timesteps": me_snn.TIMESTEPS, "fire_seeds": list(FIRE_SEEDS), "rng_seeds": list(RNG_SEEDS),
           "test_samples": int(len(y)), "rows": rows,
           "max_abs_me_minus_lif_pt": max(abs(r["me_minus_lif_pt"]) for r in rows)}
    _save("accuracy", out)
    return out


CORNERS = {
    "nominal": {},
    "barrier -10 %": {"delta0": 0.9}, "barrier +10 %": {"delta0": 1.1},
    "C_ox -10 %": {"c_ox": 0.9}, "C_ox +10 %": {"c_ox": 1.1},
    "barrier -10 %, C_ox -10 %": {"delta0": 0.9, "c_ox": 0.9}, "barrier -10 %, C_ox +10 %": {"delta0": 0.9, "c_ox": 1.1},
    "barrier +10 %, C_ox -10 %": {"delta0": 1.1, "c_ox": 0.9}, "barrier +10 %, C_ox +10 %": {"delta0": 1.1, "c_ox": 1.1},
}
SPREADS = {
    "each neuron: barrier +/-10 %": {"delta0": 0.1}, "each neuron: C_ox +/-10 %": {"c_ox": 0.1},
    "each neuron: both +/-10 %": {"delta0": 0.1, "c_ox": 0.1},
    "each neuron: both +/-20 %": {"delta0": 0.2, "c_ox": 0.2},
}


def variation(seed: int = 0) -> dict:
    """Device-level float runs of the seed's network: global corners (every neuron shifted) and
    per-neuron uniform spreads (drawn once per run, like one chip), 3 runs each."""
    from hilkit.models import me_snn, snn
    from hilkit.models.snn_recipes import digits_data

    _, _, X, y = digits_data("cnn")
    (la, lp), (ma, mp), _ = _nets(seed)
    rows = []
    base = {"lif_integer": _acc(snn.simulate(la, lp, X).output, y),
            "lif_device_float": _acc(me_snn.simulate_device(ma, mp, X, deterministic=True).output, y)}
    for kind, table in (("corner", CORNERS), ("spread", SPREADS)):
        for name, cfg in table.items():
            accs, spikes = [], []
            for r in RNG_SEEDS:
                kw = {"corner": cfg} if kind == "corner" else {"spread": cfg}
                res = me_snn.simulate_device(ma, mp, X, rng=np.random.default_rng([seed, r]), **kw)
                accs.append(_acc(res.output, y))
                spikes.append(float(sum(v.mean() for k, v in res.counters.items() if k.startswith("spikes_l"))))
            rows.append({"case": name, "kind": kind, **cfg, "accuracy": _stats(accs), "spikes": _stats(spikes),
                         "vs_lif_pt": 100 * (float(np.mean(accs)) - base["lif_integer"])})
    out = {"seed": seed, "baseline": base, "rows": rows}
    _save("variation", out)
    return out


def energy(seed: int = 0) -> dict:
    from hilkit.host.me_report import neuron_energy
    from hilkit.models import me_neuron as M
    from hilkit.models import modelfile
    from hilkit.models.network import GraphBuilder
    from hilkit.models.snn_recipes import digits_data

    _, _, X, _ = digits_data("cnn")
    _, (ma, mp), _ = _nets(seed)
    b = GraphBuilder((1, 8, 8))
    b.add("me_spiking_net", [b.input_name], ma, mp, name="snn")
    g, arrays = b.graph(name="digits-snn-me")
    e = neuron_energy(modelfile.validate(g, arrays), X)
    out = {"seed": seed, "device": M.describe(), **e}
    _save("energy", out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["accuracy", "variation", "energy", "all"])
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        if a.what in ("accuracy", "all"):
            print(json.dumps(accuracy(), indent=1))
        if a.what in ("variation", "all"):
            print(json.dumps(variation(), indent=1))
        if a.what in ("energy", "all"):
            print(json.dumps(energy(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
