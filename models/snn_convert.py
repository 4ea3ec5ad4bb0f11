"""ANN-to-SNN conversion and fixed-point export.

`convert` turns a trained ReLU network (conv/dense + ReLU, average pooling, a dense output layer)
into a `FloatSNN` by per-layer threshold balancing (Diehl et al. 2015; Rueckauer et al. 2017):
lambda_l = the maximum (or a percentile) of layer l's ReLU output over a calibration batch, then
W_l <- W_l lambda_{l-1} / lambda_l and b_l <- b_l / lambda_l, so every threshold is 1 and a
neuron's firing rate approximates its ReLU activation / lambda_l. Biases stay as a constant input
current every step. Average pooling is linear, so it is not a neuron layer: it is folded into the
next layer's input (a spike adds that layer's weights / size^2 for the pooled position).

`quantize` picks a per-layer integer scale and writes the `spiking_net` attrs and integer params
(`snn_spec`); `build_graph` wraps them into a model file graph (spiking_net -> softmax).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import snn_spec
from .layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU
from .network import GraphBuilder, Sequential


class ConversionError(ValueError):
    """The ANN has a layer the conversion does not handle."""


@dataclass
class FloatSNN:
    """A spiking network in float: the `layers` entries of the spiking_net attrs, and per neuron
    layer `l<i>` its weight and bias in the ANN's sense (applied to the average-pooled spike map)
    and its threshold (1.0 after balancing)."""

    input_shape: tuple[int, ...]
    entries: list[dict]
    weights: dict[str, np.ndarray]
    thresholds: dict[str, float]
    lambdas: dict[str, float] = field(default_factory=dict)

    def layers(self) -> list[snn_spec.NeuronLayer]:
        return snn_spec.geometry({"layers": self.entries}, self.input_shape)

    def copy(self) -> "FloatSNN":
        return FloatSNN(tuple(self.input_shape), [dict(e) for e in self.entries],
                        {k: v.copy() for k, v in self.weights.items()}, dict(self.thresholds),
                        dict(self.lambdas))


def _flat(net) -> list:
    out = []
    for m in (net.layers if isinstance(net, Sequential) else [net]):
        out += _flat(m) if isinstance(m, Sequential) else [m]
    return out


def convert(ann, X_calib: np.ndarray, input_shape, *, percentile: float = 99.9,
            batch_size: int = 256) -> FloatSNN:
    """Threshold-balanced conversion of a logits network `ann` (conv/dense, ReLU, AvgPool2D,
    Flatten; the last layer dense). `percentile` 100 is the maximum."""
    mods = _flat(ann)
    entries, weights, thresholds, lambdas = [], {}, {}, {}
    # Activations layer by layer, batched, with the modules' own forward passes.
    acts = [np.asarray(X_calib, np.float32).reshape((-1,) + tuple(input_shape))]
    for m in mods:
        acts.append(np.concatenate([m.forward(acts[-1][i:i + batch_size])
                                    for i in range(0, len(acts[-1]), batch_size)]))
    lam_prev = 1.0  # direct coding: inputs are in [-1, 1]
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, (Conv2D, Dense)):
            idx = len(entries)
            name = f"l{idx}"
            last = i == max(j for j, mm in enumerate(mods) if isinstance(mm, (Conv2D, Dense)))
            w, b = m.params["weight"].astype(np.float64), m.params["bias"].astype(np.float64)
            if isinstance(m, Conv2D):
                entries.append({"type": "conv", "filters": int(w.shape[0]), "kernel": m.kernel,
                                "stride": m.stride, "padding": m.padding})
            else:
                entries.append({"type": "dense", "units": int(w.shape[0])})
            if last:
                if not isinstance(m, Dense) or any(isinstance(mm, ReLU) for mm in mods[i + 1:]):
                    raise ConversionError("the last weighted layer must be a dense output layer without ReLU")
                weights[f"{name}.weight"], weights[f"{name}.bias"] = w * lam_prev, b
                i += 1
                continue
            if i + 1 >= len(mods) or not isinstance(mods[i + 1], ReLU):
                raise ConversionError(f"layer {i} ({type(m).__name__}) must be followed by ReLU to become spiking")
            a = acts[i + 2]  # the ReLU's output
            lam = float(np.percentile(a, percentile)) if percentile < 100 else float(a.max())
            lam = max(lam, 1e-6)
            weights[f"{name}.weight"] = w * lam_prev / lam
            weights[f"{name}.bias"] = b / lam
            thresholds[name] = 1.0
            lambdas[name] = lam
            lam_prev = lam
            i += 2
            continue
        if isinstance(m, AvgPool2D):
            if m.stride != m.size:
                raise ConversionError("average pooling must have stride == size")
            entries.append({"type": "avgpool", "size": m.size})
        elif isinstance(m, MaxPool2D):
            raise ConversionError("max pooling has no rate equivalent: train the average-pooling variant")
        elif not isinstance(m, Flatten):
            raise ConversionError(f"layer {i} ({type(m).__name__}) cannot be converted")
        i += 1
    return FloatSNN(tuple(input_shape), entries, weights, thresholds, lambdas)


# ---------------------------------------------------------------- fixed point
def snn_attrs(entries, *, timesteps: int, reset: str = "soft", v_init: str = "half", neuron: str = "if",
              leak_shift: int = 0, coding: str = "direct", input_bits: int = 8, weight_bits: int = 16,
              seed: int = 1) -> dict:
    return snn_spec.normalize({"timesteps": timesteps, "reset": reset, "v_init": v_init, "neuron": neuron,
                               "leak_shift": leak_shift, "coding": coding, "input_bits": input_bits,
                               "weight_bits": weight_bits, "seed": seed, "layers": entries})


def _f32_int(v) -> np.ndarray:
    """Integers as the model file stores them (float32): the value the C will see."""
    return np.rint(np.asarray(v, np.float64)).astype(np.float32)


def quantize(fsnn: FloatSNN, **options) -> tuple[dict, dict[str, np.ndarray]]:
    """Integer attrs and params of `fsnn` (options: see `snn_attrs`). Each layer's scale S is the
    largest that fits the weights in weight_bits and keeps every membrane inside int32 for
    `timesteps` steps; W_int = round(W S / pool^2), theta = round(K), b = round(b K) with
    K = S (x 2^input_bits for a directly coded first layer, whose input is q = x 2^input_bits)."""
    attrs = snn_attrs(fsnn.entries, **options)
    layers = snn_spec.geometry(attrs, fsnn.input_shape)
    T = attrs["timesteps"]
    wmax = 2 ** (attrs["weight_bits"] - 1) - 1
    params: dict[str, np.ndarray] = {}
    k_out = 1.0
    for l in layers:
        w = fsnn.weights[f"{l.name}.weight"] / (l.pool ** 2)
        b = fsnn.weights[f"{l.name}.bias"]
        theta = fsnn.thresholds.get(l.name, 0.0)
        amp = snn_spec.input_amplitude(attrs, l)
        u0 = theta / 2 if (l.spiking and attrs["v_init"] == "half") else 0.0
        # |current| <= S * (amp * pool^2 * sum|w| + amp * |b|) per step (b is scaled by K = S * amp)
        per_step = float((np.abs(w).reshape(w.shape[0], -1).sum(1) * l.pool ** 2 + np.abs(b)).max()) * amp
        s = wmax / max(float(np.abs(w).max()), 1e-12)
        s = min(s, 0.999 * snn_spec.INT32_MAX / ((T + 1) * per_step + u0 * amp + 1e-12))
        while True:
            k = s * amp
            cand = {f"{l.name}.weight": _f32_int(np.clip(np.rint(w * s), -wmax, wmax)),
                    f"{l.name}.bias": _f32_int(b * k)}
            if l.spiking:
                cand[f"{l.name}.threshold"] = _f32_int([max(1.0, theta * k)])
            cur = snn_spec.max_current(attrs, l, cand[f"{l.name}.weight"], cand[f"{l.name}.bias"])
            t0 = int(cand[f"{l.name}.threshold"][0]) // 2 if (l.spiking and attrs["v_init"] == "half") else 0
            if t0 + (T + 1) * cur <= snn_spec.INT32_MAX:
                break
            s *= 0.98
        params.update(cand)
        k_out = k
    params["output_scale"] = np.array([1.0 / (k_out * T)], np.float32)
    snn_spec.check_values(attrs, layers, params)
    return attrs, params


def build_graph(attrs: dict, params: dict, input_shape, *, name: str, meta: dict | None = None,
                softmax: bool = True) -> tuple[dict, dict]:
    """A model-file graph: input -> spiking_net `snn` (-> softmax)."""
    b = GraphBuilder(input_shape)
    out = b.add("spiking_net", [b.input_name], attrs, params, name="snn")
    if softmax:
        out = b.add("softmax", [out], name="softmax")
    return b.graph(name=name, output=out, meta=meta)
