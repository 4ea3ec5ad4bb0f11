"""ReStoCNet (Srinivasan and Roy, Frontiers in Neuroscience 2019, 13:189): stacked convolutional
LIF layers with binary (+/-1) kernels and residual connections, trained layer by layer without
labels by hybrid Hebbian / anti-Hebbian STDP (HB-STDP), average (sum) pooling of the last layer's
spikes and a softmax readout trained with labels. Runs on the boards as the `binary_snn` op with
bit-packed kernels (models/stdp.py, kernels_c/hk_binconv.h, docs/stdp.md).

Our reading of HB-STDP (the paper's exact curves were not available here; docs/stdp.md): when a
kernel neuron wins the winner-take-all at step t_post, each synapse of its kernel, with
dt = t_post - (its input's last spike at or before t_post) (inf: no spike yet), switches
    to +1 with probability  p_pot = gamma_pot * exp(-dt / tau_pot)           (Hebbian: causal pre spike)
    else to -1 with         p_dep = gamma_dep * (1 - exp(-dt / tau_dep))     (anti-Hebbian: the input
                                                                             was silent, or long ago)
so the switching toward +1 decays with the spike-time difference and the switching toward -1 takes
what it leaves. A kernel converges to the sign of how recently its inputs fire when it wins:
a binary template of the windows it wins.

Residual connections: a residual layer's neurons also receive, through their own binary kernels
(learned by the same rule at the same time), the spikes of the layer two back (the input for the
second layer), summed into the same membranes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import stdp
from .stdp import NetConfig, RandomKernels


@dataclass(frozen=True)
class HBSTDP:
    """Probabilistic binary STDP: see the module docstring."""

    gamma_pot: float = 0.5
    tau_pot: float = 4.0
    gamma_dep: float = 0.1
    tau_dep: float = 4.0
    kernel_bits = 1

    def init(self, F: int, D: int, rng: np.random.Generator) -> np.ndarray:
        return np.where(rng.random((F, D)) < 0.5, 1.0, -1.0)

    def probabilities(self, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_pot, p_dep) per synapse for spike-time differences dt (inf: no pre spike)."""
        decay_p = np.exp(-np.asarray(dt, np.float64) / self.tau_pot)
        decay_d = np.exp(-np.asarray(dt, np.float64) / self.tau_dep)
        return self.gamma_pot * decay_p, self.gamma_dep * (1.0 - decay_d)

    def update(self, w: np.ndarray, dt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p_pot, p_dep = self.probabilities(dt)
        r = rng.random(w.shape)
        return np.where(r < p_pot, 1.0, np.where(r < p_pot + (1.0 - p_pot) * p_dep, -1.0, w))

    def quantize(self, w: np.ndarray) -> np.ndarray:
        return np.where(w > 0, 1.0, -1.0)

    def describe(self) -> dict:
        return {"rule": "HB-STDP (ReStoCNet reading)", "gamma_pot": self.gamma_pot, "tau_pot": self.tau_pot,
                "gamma_dep": self.gamma_dep, "tau_dep": self.tau_dep, "stored": "1 bit per weight"}


def layers(n: int, residual: bool, filters: int = 16, first_kernel: int = 5, kernel: int = 3) -> tuple:
    """n conv layers: the first `first_kernel` x `first_kernel` on the input, the others
    `kernel` x `kernel`, each (with `residual`) also fed by the layer two back (the second layer by
    the input spikes)."""
    out = [{"filters": filters, "kernel": first_kernel}]
    out += [{"filters": filters, "kernel": kernel, "residual": int(residual)} for _ in range(n - 1)]
    return tuple(out)


# percentile 90: deeper layers see sparse inputs, and a lower inference threshold keeps them talking
DIGITS_RESTOCNET = NetConfig(layers=layers(3, True), rule=HBSTDP(), percentile=90.0)


def digits_restocnet(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """digits-restocnet: 3 conv layers of 16 binary kernels (5x5, then 3x3 with residual inputs)
    learned by HB-STDP, LIF (leak 1/8), T = 16, sum-pool 2 of the last layer, softmax readout.
    `epochs` scales the STDP update rounds per layer (x100)."""
    cfg = DIGITS_RESTOCNET
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        cfg = replace(cfg, competition=replace(cfg.competition, rounds=100 * int(epochs)))
    res = stdp.recipe("digits-restocnet", cfg, out_path, seed=seed, progress=progress)
    from . import modelfile
    node = modelfile.load(out_path).layers[0]
    return {**res, **{f"kernel_{k}": v for k, v in kernel_memory(node["attrs"], (1, 8, 8)).items() if k != "layers"}}


# ---------------------------------------------------------------- memory
def kernel_memory(attrs: dict, in_shape, sliced_min_words: int = 2) -> dict:
    """Kernel bytes of a binary_snn as the generated C stores them, against float32 kernels.
    kernel_bits 8: one byte per weight. kernel_bits 1: a layer on the AND + popcount kernel packs
    each filter in ceil(k*k*c_in / 32) words; a bit-sliced layer (8, 16 or 32 filters and a window
    of at least `sliced_min_words` words: codegen/ops_binary.SLICED_MIN_WORDS, whose default this
    mirrors; tests/test_restocnet.py checks the two agree) stores one F-bit mask per synapse."""
    a = stdp.normalize(attrs)
    rows = []
    for l in stdp.geometry(a, in_shape):
        n = l.filters * l.patch_bits
        words = (l.patch_bits + 31) // 32
        if a["kernel_bits"] == 8:
            stored = n
        elif sliced_min_words > 0 and l.filters in (8, 16, 32) and words >= sliced_min_words:
            stored = n // 8
        else:
            stored = l.filters * 4 * words
        rows.append({"layer": l.name, "shape": list(l.weight_shape()), "weights": n, "bytes": stored,
                     "float32_bytes": 4 * n, "compression": 4 * n / stored})
    total, f32 = sum(r["bytes"] for r in rows), sum(r["float32_bytes"] for r in rows)
    return {"layers": rows, "bytes": total, "float32_bytes": f32, "compression": f32 / total}


# ---------------------------------------------------------------- the residual ablation
def evaluate(cfg: NetConfig, seed: int) -> dict:
    """Train cfg on the digits training split and measure test accuracy (reference integers, float
    readout), without writing a model file. For the ablation (bench/stdp/ablation.py)."""
    from .data import as_images, digits_split

    X_train, y_train, X_test, y_test = digits_split()
    X_train, X_test = as_images(X_train), as_images(X_test)
    net = stdp.train_network(cfg, X_train, y_train, seed)
    res = stdp.simulate(net["attrs"], net["params"], X_test)
    w, b = net["readout"]
    logits = res.output.reshape(len(X_test), -1) @ w.T + b
    return {"test_accuracy": float((logits.argmax(axis=1) == y_test).mean()),
            "spikes_per_layer": [float(c.reshape(len(X_test), -1).sum(axis=1).mean()) for c in res.counts],
            "synops_per_inference": float(res.counters["synops"].mean()),
            "positive_weight_fraction": [s["positive_weight_fraction"] for s in net["layers"]]}


def ablation_configs(rule=None) -> dict[str, NetConfig]:
    """name -> config: 1-3 conv layers, with and without residual connections."""
    base = DIGITS_RESTOCNET if rule is None else replace(DIGITS_RESTOCNET, rule=rule)
    out = {"1 layer": replace(base, layers=layers(1, False))}
    for n in (2, 3):
        out[f"{n} layers, plain"] = replace(base, layers=layers(n, False))
        out[f"{n} layers, residual"] = replace(base, layers=layers(n, True))
    return out


__all__ = ["HBSTDP", "RandomKernels", "DIGITS_RESTOCNET", "digits_restocnet", "kernel_memory", "evaluate",
           "ablation_configs", "layers"]
