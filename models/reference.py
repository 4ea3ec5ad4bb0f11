"""The float32 numpy reference: run a loaded model file's graph on a batch.

This is what the generated C is compared against, so every op computes in float32 (the C does
too). It uses the same operator functions as training (`functional.py`), reading only the model
file, never the training objects.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .modelfile import LoadedModel, load


def _run(layer: dict, xs: list[np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
    op, a = layer["op"], layer["attrs"]
    x = xs[0]
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
    raise NotImplementedError(f"layer {layer['name']!r}: the reference has no op {op!r}")


def _batch(model: LoadedModel, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    shape = tuple(model.input_shape)
    if X.shape[1:] == shape:
        return X
    if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
        return X.reshape((X.shape[0],) + shape)
    raise ValueError(f"input batch has shape {list(X.shape)}; model {model.name!r} needs "
                     f"[N, {', '.join(map(str, shape))}] (or [N, {int(np.prod(shape))}])")


def forward_trace(model, X) -> dict[str, np.ndarray]:
    """Every value of the graph for the batch X: {"input": X, layer name: output, ...}, float32.
    `model` is a LoadedModel or a model file path; X is [N, *input_shape] or [N, prod(input_shape)]."""
    if not isinstance(model, LoadedModel):
        model = load(model)
    values = {"input": _batch(model, X)}
    values[model.graph["input"]["name"]] = values["input"]
    for layer in model.layers:
        y = _run(layer, [values[s] for s in layer["inputs"]], model.params(layer))
        values[layer["name"]] = y.astype(np.float32, copy=False)
    return values


def forward(model, X) -> np.ndarray:
    """The model's output for the batch X, float32 [N, *output_shape]."""
    if not isinstance(model, LoadedModel):
        model = load(model)
    return forward_trace(model, X)[model.output]


def predict(model, X) -> np.ndarray:
    """Top-1 class per sample."""
    return forward(model, X).reshape(len(X), -1).argmax(axis=1)
