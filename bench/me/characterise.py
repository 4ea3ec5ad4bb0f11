"""Characterisation of the ME neuron's switching (docs/me-neuron.md): the stochastic LLG against
the fitted Neel-Brown model, switching probability against input current and pulse length, and
the time per neuron update of each model.

    .venv/bin/python bench/me/characterise.py simulate   # ~12 min of one core: sLLG runs -> out/me-bench/sllg_raw.npz
    .venv/bin/python bench/me/characterise.py fit        # seconds: fit, compare, plots, results/characterise.json
    .venv/bin/python bench/me/characterise.py timing     # ~1 min: time per neuron update
    .venv/bin/python bench/me/characterise.py all

The fit is made on constant-field runs and checked on different runs: neurons charged from 0 V by a
constant input current (the RC integrator in front of the magnet), and devices with the barrier
10 % lower and higher (the fitted model takes the barrier as an input).
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
RAW = Path("out/me-bench/sllg_raw.npz")     # first-passage times of every trial (large: not kept in git)

DT = 4e-12                                   # s, Heun step (dt_convergence shows 1-8 ps agree)
T_MAX = 200e-9                               # s, longest pulse
N_FIT = 2000                                 # trials per constant-field point
N_CHECK = 2000                               # trials per current
H_FIT = np.round(np.arange(0.45, 1.001, 0.05), 3)
CURRENTS = np.array([0.15, 0.18, 0.2, 0.22, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0]) * 1e-9   # A
PULSES = np.array([10, 20, 30, 40, 50, 70, 100, 150, 200]) * 1e-9                                    # s
T_FIT = np.array([5, 10, 20, 30, 50, 70, 100, 150, 200]) * 1e-9
H_VARY = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
VARY = (0.9, 1.1)
STEP_DV = np.array([0.04, 0.06, 0.08, 0.12, 0.2])         # V added to the oxide per 10 ns network step


def _save_json(name: str, obj) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(obj, indent=1) + "\n")
    return p


def _frac(t_sw: np.ndarray, t: np.ndarray) -> np.ndarray:
    """[rows, len(t)]: fraction of each row's trials switched by each time."""
    return (t_sw[:, :, None] <= t[None, None, :]).mean(axis=1)


# ---------------------------------------------------------------- sLLG runs
def _staircase(dev, dv: np.ndarray, t: float) -> np.ndarray:
    """Oxide voltage of a network neuron at time t: each 10 ns step adds dv (its input charge / C)
    after the leak, V_k = V_(k-1) e^(-dt/RC) + dv, held for the step."""
    k = np.floor(t / dev.dt_step) + 1
    keep = dev.leak_factor()
    return dv * (1 - keep ** k) / (1 - keep)


def simulate(seed: int = 0, parts=("const", "rc", "vary", "steps", "dt")) -> dict:
    """Run the missing sLLG parts (each seeded on its own) and merge them into results/sllg_raw.npz."""
    from hilkit.models import me_neuron as M

    dev = M.NOMINAL
    out = dict(np.load(RAW)) if RAW.is_file() else {}
    prev = RESULTS / "sllg_runs.json"
    meta = json.loads(prev.read_text()) if prev.is_file() else {}
    secs = meta.get("seconds", {})
    for i, part in enumerate(parts):
        if part in secs and (part == "dt" or part in out or f"{part}_{VARY[0]}" in out):
            continue
        rng = np.random.default_rng([seed, i])
        t0 = time.perf_counter()
        if part == "const":
            b = np.repeat(H_FIT * dev.b_k, N_FIT)
            out["const"] = M.sllg_first_passage(dev, b, T_MAX, len(b), rng, dt=DT).reshape(len(H_FIT), N_FIT)
        elif part == "rc":
            cur = np.repeat(CURRENTS, N_CHECK)
            field = lambda t: dev.b_me(dev.oxide_voltage(cur, t))  # noqa: E731
            out["rc"] = M.sllg_first_passage(dev, field, T_MAX, len(cur), rng, dt=DT).reshape(len(CURRENTS), N_CHECK)
        elif part == "vary":
            for f in VARY:
                d = dev.vary(delta0=f)
                b = np.repeat(H_VARY * d.b_k, N_FIT)
                out[f"vary_{f}"] = M.sllg_first_passage(d, b, 100e-9, len(b), rng, dt=DT).reshape(len(H_VARY), N_FIT)
        elif part == "steps":
            dv = np.repeat(STEP_DV, N_CHECK)
            field = lambda t: dev.b_me(_staircase(dev, dv, t))  # noqa: E731
            out["steps"] = M.sllg_first_passage(dev, field, T_MAX, len(dv), rng, dt=DT).reshape(len(STEP_DV), N_CHECK)
        elif part == "dt":
            conv = {}
            for dt in (1e-12, 2e-12, 4e-12, 8e-12):
                r = np.random.default_rng([seed, 99])
                b = np.repeat(np.array([0.7, 0.9]) * dev.b_k, N_FIT)
                ts = M.sllg_first_passage(dev, b, 20e-9, len(b), r, dt=dt).reshape(2, N_FIT)
                conv[f"{dt * 1e12:g}ps"] = {"h0.7_P5ns": float((ts[0] <= 5e-9).mean()),
                                            "h0.7_P20ns": float((ts[0] <= 20e-9).mean()),
                                            "h0.9_P5ns": float((ts[1] <= 5e-9).mean()),
                                            "h0.9_P20ns": float((ts[1] <= 20e-9).mean())}
            meta["dt_convergence"] = conv
        secs[part] = time.perf_counter() - t0
        RAW.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(RAW, **out)
    meta.update({"seed": seed, "dt_s": DT, "t_max_s": T_MAX, "n_fit": N_FIT, "n_check": N_CHECK,
                 "h_fit": H_FIT.tolist(), "currents_a": CURRENTS.tolist(), "h_vary": H_VARY.tolist(),
                 "vary_delta0": list(VARY), "step_dv_v": STEP_DV.tolist(), "seconds": secs})
    _save_json("sllg_runs", meta)
    return meta


# ---------------------------------------------------------------- fit and compare
def fit() -> dict:
    from hilkit.models import me_neuron as M

    dev = M.NOMINAL
    raw = np.load(RAW)
    p_const = _frac(raw["const"], T_FIT)                         # [h, t]
    model = M.fit_neel_brown(dev, [(H_FIT, T_FIT, p_const, dev.delta0)])

    def compare(p_sllg, p_fit, n):
        d = p_fit - p_sllg
        se = np.sqrt(np.maximum(p_sllg * (1 - p_sllg), 1 / n) / n)   # binomial standard error of the sLLG
        return {"max_abs_diff": float(np.abs(d).max()), "mean_abs_diff": float(np.abs(d).mean()),
                "max_abs_z": float(np.abs(d / se).max()), "points": int(d.size)}

    res_const = compare(p_const, model.p_const(dev, H_FIT, T_FIT), N_FIT)
    p_rc = _frac(raw["rc"], PULSES)                              # [I, t]
    p_rc_fit = model.p_pulse(dev, CURRENTS, PULSES)
    res_rc = compare(p_rc, p_rc_fit, N_CHECK)
    vary = {}
    t_v = T_FIT[T_FIT <= 100e-9]
    for f in VARY:
        d = dev.vary(delta0=f)
        vary[f"delta0_x{f}"] = compare(_frac(raw[f"vary_{f}"], t_v), model.p_const(d, H_VARY, t_v), N_FIT)
    checks = {"current_pulses": res_rc, **{f"barrier_{k}": v for k, v in vary.items()}}
    steps = None
    if "steps" in raw:
        n_steps = int(round(T_MAX / dev.dt_step))
        t_k = (np.arange(n_steps) + 1) * dev.dt_step
        p_steps = _frac(raw["steps"], t_k)
        v = _staircase(dev, STEP_DV[:, None], t_k[None] - dev.dt_step / 2)          # [dv, k]
        quasi = 1 - np.cumprod(1 - model.p_step(dev, v), axis=1)                   # what the network uses
        grid = np.linspace(0, T_MAX, 1601)
        lagged = model.p_waveform(dev, grid, dev.h(_staircase(dev, STEP_DV[:, None], grid[None])))
        lagged = np.stack([np.interp(t_k, grid, row) for row in lagged])
        checks["network_steps_lag_model"] = compare(p_steps, lagged, N_CHECK)
        checks["network_steps_quasi_static"] = compare(p_steps, quasi, N_CHECK)
        steps = {"dv_v": STEP_DV.tolist(), "p_sllg": np.round(p_steps[:, ::2], 4).tolist(),
                 "p_quasi_static": np.round(quasi[:, ::2], 4).tolist(), "steps": list(range(1, n_steps + 1, 2))}
    summary = {
        "model": {"form": "r = f0 ((1-h+eps)/(1+eps))^p exp(-D (1-h)^beta - (Delta-D)(1-h)^2), lag tau_m = "
                          "(1+a^2)/(a gamma B_K (1-h_eff)); P = 1 - exp(-int r(h_eff) dt)",
                  **model.params(), "fitted_on": "constant-field sLLG runs of the nominal device", **model.fit_info},
        "device": M.describe(dev, model),
        "fit_constant_field": res_const,
        "checks": checks,
        "max_abs_diff_fit_and_pulses": max(res_const["max_abs_diff"], res_rc["max_abs_diff"]),
        "max_abs_diff_all": max(res_const["max_abs_diff"], *(c["max_abs_diff"] for c in checks.values())),
        "range": {"h": [float(H_FIT[0]), float(H_FIT[-1])], "t_s": [float(T_FIT[0]), float(T_FIT[-1])],
                  "currents_a": [float(CURRENTS[0]), float(CURRENTS[-1])],
                  "pulses_s": [float(PULSES[0]), float(PULSES[-1])]},
        "table_current_pulse": {"currents_na": (CURRENTS * 1e9).tolist(), "pulses_ns": (PULSES * 1e9).tolist(),
                                "p_sllg": np.round(p_rc, 4).tolist(), "p_fit": np.round(p_rc_fit, 4).tolist()},
        "network_steps": steps,
    }
    _save_json("characterise", summary)
    _plots(dev, model, p_const, p_rc, raw)
    return summary


def _plots(dev, model, p_const, p_rc, raw) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(20, 4.6))
    cols = plt.cm.viridis(np.linspace(0, 0.9, len(PULSES)))
    i_fine = np.linspace(CURRENTS[0], CURRENTS[-1], 200)
    pf = model.p_pulse(dev, i_fine, PULSES)
    for j, c in enumerate(cols):
        ax[0].plot(CURRENTS * 1e9, p_rc[:, j], "o", color=c)
        ax[0].plot(i_fine * 1e9, pf[:, j], "-", color=c, label=f"{PULSES[j] * 1e9:.0f} ns")
    ax[0].set(xlabel="input current (nA)", ylabel="P(switch)", title="P vs current (o sLLG, - fitted)")
    ax[0].legend(fontsize=7, title="pulse")
    t_fine = np.linspace(1e-9, T_MAX, 200)
    pf = model.p_pulse(dev, CURRENTS, t_fine)
    cols = plt.cm.plasma(np.linspace(0, 0.9, len(CURRENTS)))
    for i, c in enumerate(cols):
        ax[1].plot(PULSES * 1e9, p_rc[i], "o", color=c)
        ax[1].plot(t_fine * 1e9, pf[i], "-", color=c, label=f"{CURRENTS[i] * 1e9:.2f} nA")
    ax[1].set(xlabel="pulse length (ns)", ylabel="P(switch)", title="P vs pulse length")
    ax[1].legend(fontsize=7, title="current")
    cols = plt.cm.cividis(np.linspace(0, 0.9, len(H_FIT)))
    for k, c in enumerate(cols):
        ax[2].semilogx(T_FIT * 1e9, p_const[k], "o", color=c)
        ax[2].semilogx(t_fine * 1e9, model.p_const(dev, H_FIT[k], t_fine)[0], "-", color=c,
                       label=f"h={H_FIT[k]:.2f}")
    ax[2].set(xlabel="time under constant field (ns)", ylabel="P(switch)", title="fit data: constant h = B_ME/B_K")
    ax[2].legend(fontsize=6, ncol=2)
    if "steps" in raw:
        n_steps = int(round(T_MAX / dev.dt_step))
        k = np.arange(1, n_steps + 1)
        p_steps = _frac(raw["steps"], k * dev.dt_step)
        v = _staircase(dev, STEP_DV[:, None], (k[None] - 0.5) * dev.dt_step)
        quasi = 1 - np.cumprod(1 - model.p_step(dev, v), axis=1)
        grid = np.linspace(0, T_MAX, 1601)
        lagged = model.p_waveform(dev, grid, dev.h(_staircase(dev, STEP_DV[:, None], grid[None])))
        cols = plt.cm.magma(np.linspace(0, 0.85, len(STEP_DV)))
        for i, c in enumerate(cols):
            ax[3].plot(k, p_steps[i], "o", color=c, ms=4)
            ax[3].plot(grid / dev.dt_step, lagged[i], "-", color=c, label=f"+{STEP_DV[i] * 1e3:.0f} mV/step")
            ax[3].plot(k, quasi[i], "--", color=c, lw=1)
        ax[3].set(xlabel="network steps (10 ns)", ylabel="P(fired by step)", xlim=(0, n_steps),
                  title="network drive (o sLLG, - fitted, -- per-step table)")
        ax[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "switching.png", dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- time per neuron update
def timing(seed: int = 0) -> dict:
    """Wall time per neuron per network step (10 ns of device time) of each model, vectorised over
    many neurons on this machine (one core)."""
    from threadpoolctl import threadpool_limits

    from hilkit.models import me_neuron as M
    from hilkit.models import me_snn

    dev, model = M.NOMINAL, M.FITTED
    rng = np.random.default_rng(seed)
    out = {}
    with threadpool_limits(1):
        n = 4000
        per_heun = M.sllg_step_cost(dev, n, rng, dt=DT, steps=250)
        out["sllg"] = {"s_per_neuron_step": per_heun * dev.dt_step / DT, "heun_steps_per_neuron_step": dev.dt_step / DT,
                       "s_per_heun_step_per_spin": per_heun, "neurons_vectorised": n}
        n = 100_000
        v = rng.uniform(0, 1.5, n)
        reps = 50
        t0 = time.perf_counter()
        for _ in range(reps):
            fire = rng.random(n) < model.p_step(dev, v)
        out["fitted_rate"] = {"s_per_neuron_step": (time.perf_counter() - t0) / (reps * n), "neurons_vectorised": n}
        he = np.zeros(n)
        h = dev.h(v)
        t0 = time.perf_counter()
        for _ in range(reps // 5):                # the device-level network's neuron: lag, 8 sub-steps
            acc = np.zeros(n)
            for _ in range(8):
                a = np.exp(-dev.dt_step / 8 / model.tau_m(dev, he))
                he = a * he + (1 - a) * h
                acc += model.rate(he, dev.delta0) * dev.dt_step / 8
            fire = rng.random(n) < -np.expm1(-acc)
        out["fitted_rate_with_lag"] = {"s_per_neuron_step": (time.perf_counter() - t0) / (reps // 5 * n),
                                       "neurons_vectorised": n, "substeps": 8}
        table = me_snn.fire_table(dev, model, 1 << 15, 8, 128)
        u = (v / model.v50(dev) * (1 << 15)).astype(np.int64)
        r = rng.integers(0, 1 << 16, n)
        t0 = time.perf_counter()
        for _ in range(reps):
            fire = r < table[np.clip(u >> 8, 0, 127)]
        out["table"] = {"s_per_neuron_step": (time.perf_counter() - t0) / (reps * n), "neurons_vectorised": n}
        del fire
    out["speedup_fitted_vs_sllg"] = out["sllg"]["s_per_neuron_step"] / out["fitted_rate"]["s_per_neuron_step"]
    _save_json("timing", out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["simulate", "fit", "timing", "all"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.what in ("simulate", "all"):
        print(json.dumps(simulate(a.seed), indent=1))
    if a.what in ("fit", "all"):
        print(json.dumps(fit(), indent=1))
    if a.what in ("timing", "all"):
        print(json.dumps(timing(a.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
