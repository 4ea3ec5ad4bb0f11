"""The float32 numpy reference: run a loaded model file's graph on a batch.

This is what the generated C is compared against, so every op computes in float32 (the C does
too). It uses the same operator functions as training (`functional.py`), reading only the model
file, never the training objects.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .modelfile import LoadedModel, load


def _run(layer: dict, xs: list[np.ndarray], p: dict[str, np.ndarray], exp: str | None = None) -> np.ndarray:
    op, a = layer["op"], layer["attrs"]
    x = xs[0]
    variant = a.get("exp", exp)  # the layer's own exp wins over the default, as in codegen
    if op in _QUAKE_OPS and variant in _QUAKE_VARIANTS:  # QuAKE exp kernels, bit-exact with the C
        return _QUAKE_OPS[op](a, xs, variant)
    if op in _TRANSFORMER:  # ViT ops (models/transformer.py, docs/quake.md)
        return _TRANSFORMER[op](a, xs, p, variant)
    if op == "dense":
        return F.dense(x, p["weight"], p["bias"])
    if op == "conv2d":
        return F.conv2d(x, p["weight"], p["bias"], a["stride"], a["padding"])
    if op == "maxpool2d":
        return F.maxpool2d(x, a["size"], a["stride"])
    if op == "avgpool2d":
        return F.avgpool2d(x, a["size"], a["stride"])
    if op == "relu":
        return F.relu(x)
    if op == "gelu":
        return F.gelu(x, a["approx"])
    if op == "sigmoid":
        return F.sigmoid(x)
    if op == "softmax":
        return F.softmax(x)
    if op == "flatten":
        return F.flatten(x)
    if op == "add":
        return F.add(xs[0], xs[1])
    if op == "spiking_net":  # fixed-point spiking network (docs/snn.md)
        from . import snn
        return snn.forward(a, p, x)
    if op == "me_spiking_net":  # ME-LIF neurons, stochastic firing (docs/me-neuron.md)
        from . import me_snn
        return me_snn.forward(a, p, x)
    if op == "binary_snn":  # STDP-trained binary/int8-kernel conv SNN (docs/stdp.md)
        from . import stdp
        return stdp.forward(a, p, x)
    if op == "lsm_policy":  # spiking reservoir policy: the batch is a sequence of control steps (docs/reservoir-rl.md)
        from . import reservoir
        return reservoir.forward(a, p, x)
    if op in _INTERCHANGE:  # ops added for .tflite import (docs/interchange.md)
        return _INTERCHANGE[op](a, xs, p)
    if op in ("meanet_gate", "meanet_merge"):  # MEANet (docs/meanet.md)
        from . import meanet
        hard = meanet.parse_hard(a["hard"], xs[0].shape[-1])
        if op == "meanet_gate":
            return meanet.gate(xs[0], hard, p["threshold"][0], a["criterion"])[0]
        return meanet.merge(xs[0], xs[1], hard)
    raise NotImplementedError(f"layer {layer['name']!r}: the reference has no op {op!r}")


# Ops added for .tflite import: op -> fn(attrs, inputs, params).
_INTERCHANGE = {
    "dwconv2d": lambda a, xs, p: F.dwconv2d(xs[0], p["weight"], p["bias"], a["stride"], a["padding"],
                                            a["multiplier"]),
    "pad": lambda a, xs, p: F.pad2d(xs[0], a["top"], a["bottom"], a["left"], a["right"]),
    "mean": lambda a, xs, p: F.mean_hw(xs[0], a["keepdims"]),
    "concat": lambda a, xs, p: F.concat(xs),
    "mul": lambda a, xs, p: xs[0] * xs[1],
    "add_const": lambda a, xs, p: xs[0] + p["value"],
    "mul_const": lambda a, xs, p: xs[0] * p["value"],
    "relu6": lambda a, xs, p: F.relu6(xs[0]),
    "relu1": lambda a, xs, p: F.relu1(xs[0]),
    "tanh": lambda a, xs, p: np.tanh(xs[0]),
    "gelu_erf": lambda a, xs, p: F.gelu_erf(xs[0]),
    "flatten_hwc": lambda a, xs, p: F.flatten_hwc(xs[0]),
}

# QuAKE exp variants (docs/quake.md): op -> fn(attrs, inputs, variant), bit-exact with kernels_c/hk_exp.h.
_QUAKE_VARIANTS = ("quake1", "quake2")


def _quake_gelu(a, xs, v):
    from . import quake
    return (quake.gelu_tanh if a.get("approx", "sigmoid") == "tanh" else quake.gelu)(xs[0], v)


def _quake(name: str):
    def run(a, xs, v):
        from . import quake
        return getattr(quake, name)(xs[0], v)
    return run


_QUAKE_OPS = {"softmax": _quake("softmax"), "sigmoid": _quake("logistic"), "gelu": _quake_gelu}


def _attention(a, xs, p, v):
    softmax_fn = F.softmax
    if v in _QUAKE_VARIANTS:
        from . import quake
        softmax_fn = lambda s: quake.softmax(s, v)  # noqa: E731
    return F.attention(xs[0], p["qkv_weight"], p["qkv_bias"], p["out_weight"], p["out_bias"], a["heads"],
                       softmax_fn)


# ViT ops (models/transformer.py): op -> fn(attrs, inputs, params, exp variant).
_TRANSFORMER = {
    "patches": lambda a, xs, p, v: F.patches(xs[0], a["height"], a["width"]),
    "token_dense": lambda a, xs, p, v: F.dense(xs[0], p["weight"], p["bias"]),
    "layernorm": lambda a, xs, p, v: F.layernorm(xs[0], p["weight"], p["bias"]),
    "attention": _attention,
    "token_mean": lambda a, xs, p, v: F.token_mean(xs[0]),
}


def _batch(model: LoadedModel, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    shape = tuple(model.input_shape)
    if X.shape[1:] == shape:
        return X
    if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
        return X.reshape((X.shape[0],) + shape)
    raise ValueError(f"input batch has shape {list(X.shape)}; model {model.name!r} needs "
                     f"[N, {', '.join(map(str, shape))}] (or [N, {int(np.prod(shape))}])")


def forward_trace(model, X, exp: str | None = None) -> dict[str, np.ndarray]:
    """Every value of the graph for the batch X: {"input": X, layer name: output, ...}, float32.
    `model` is a LoadedModel or a model file path; X is [N, *input_shape] or [N, prod(input_shape)].
    `exp` is the default exp variant of softmax/sigmoid/gelu/attention layers, as `hilkit compile
    --exp` sets it (a layer's own `exp` attribute wins): with quake1/quake2 those layers compute
    exactly what the C kernels compute (hilkit.models.quake); None or libm: numpy's exp."""
    if not isinstance(model, LoadedModel):
        model = load(model)
    values = {"input": _batch(model, X)}
    values[model.graph["input"]["name"]] = values["input"]
    for layer in model.layers:
        y = _run(layer, [values[s] for s in layer["inputs"]], model.params(layer), exp)
        values[layer["name"]] = y.astype(np.float32, copy=False)
    return values


def forward(model, X, exp: str | None = None) -> np.ndarray:
    """The model's output for the batch X, float32 [N, *output_shape] (`exp`: see forward_trace)."""
    if not isinstance(model, LoadedModel):
        model = load(model)
    return forward_trace(model, X, exp)[model.output]


def predict(model, X, exp: str | None = None) -> np.ndarray:
    """Top-1 class per sample."""
    return forward(model, X, exp).reshape(len(X), -1).argmax(axis=1)
