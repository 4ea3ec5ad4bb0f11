"""The operators of model-file version 1: their attributes, parameters and output shapes.

One table for everything that reads a model file (the loader's validation, the reference, the
code generator). `check(op, attrs, in_shapes)` fills in default attributes and returns the output
shape and the expected parameter shapes, or raises `OpError` saying what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import functional as F

EXP_VARIANTS = ("libm", "quake1", "quake2")
REQUIRED = object()


class OpError(ValueError):
    """An operator's attributes or inputs are out of range."""


@dataclass(frozen=True)
class Attr:
    kind: type                    # int or str
    default: object = REQUIRED    # None: derived from another attribute
    choices: tuple = ()


@dataclass(frozen=True)
class OpSpec:
    n_inputs: int
    attrs: dict = field(default_factory=dict)
    params: tuple = ()


OPS: dict[str, OpSpec] = {
    "dense": OpSpec(1, {"units": Attr(int)}, ("weight", "bias")),
    "conv2d": OpSpec(1, {"filters": Attr(int), "kernel": Attr(int), "stride": Attr(int, 1),
                         "padding": Attr(str, "same", F.PADDINGS)}, ("weight", "bias")),
    "maxpool2d": OpSpec(1, {"size": Attr(int), "stride": Attr(int, None)}),
    "avgpool2d": OpSpec(1, {"size": Attr(int), "stride": Attr(int, None)}),
    "relu": OpSpec(1),
    "gelu": OpSpec(1, {"approx": Attr(str, "sigmoid", F.GELU_APPROX)}),
    "sigmoid": OpSpec(1),
    "softmax": OpSpec(1),
    "flatten": OpSpec(1),
    "add": OpSpec(2),
}
# Every op may carry `exp` (it only matters to softmax, gelu, sigmoid); it has no default here
# because the code generator fills in the `--exp` of `hilkit compile`.
EXP_ATTR = Attr(str, None, EXP_VARIANTS)


def normalize_attrs(op: str, attrs: dict) -> dict:
    """Type-check `attrs` and fill in defaults; unknown names are an error (not silently ignored)."""
    spec = OPS[op]
    table = dict(spec.attrs, exp=EXP_ATTR)
    unknown = sorted(set(attrs) - set(table))
    if unknown:
        known = ", ".join(sorted(table))
        raise OpError(f"unknown attribute {unknown[0]!r} for {op} (known: {known})")
    out = {}
    for key, a in table.items():
        if key not in attrs:
            if a.default is REQUIRED:
                raise OpError(f"{op} needs attribute {key!r}")
            if a.default is not None:
                out[key] = a.default
            continue
        v = attrs[key]
        if a.kind is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise OpError(f"attribute {key!r} must be an integer, not {v!r}")
            if v < 1:
                raise OpError(f"attribute {key!r} must be >= 1, not {v}")
        elif not isinstance(v, str) or (a.choices and v not in a.choices):
            raise OpError(f"attribute {key!r} must be one of {', '.join(a.choices)}, not {v!r}")
        out[key] = v
    if op in ("maxpool2d", "avgpool2d"):
        out.setdefault("stride", out["size"])
    return out


def _shape(s) -> str:
    return "[" + ", ".join(str(d) for d in s) + "]"


def check(op: str, attrs: dict, in_shapes: list[tuple[int, ...]]) -> tuple[dict, tuple[int, ...], dict]:
    """Validate one node. Returns (attrs with defaults, output shape, {param role: shape})."""
    if op not in OPS:
        raise OpError(f"unknown op {op!r} (known: {', '.join(OPS)})")
    spec = OPS[op]
    if len(in_shapes) != spec.n_inputs:
        raise OpError(f"{op} takes {spec.n_inputs} input(s), got {len(in_shapes)}")
    a = normalize_attrs(op, attrs)
    x = in_shapes[0]

    if op == "dense":
        if len(x) != 1:
            raise OpError(f"dense needs a 1-D input, got {_shape(x)}: put a flatten layer before it")
        return a, (a["units"],), {"weight": (a["units"], x[0]), "bias": (a["units"],)}

    if op in ("conv2d", "maxpool2d", "avgpool2d"):
        if len(x) != 3:
            raise OpError(f"{op} needs a [C, H, W] input, got {_shape(x)}")
        c, h, w = x
        k = a["kernel"] if op == "conv2d" else a["size"]
        valid = op != "conv2d" or a["padding"] == "valid"
        if valid and (k > h or k > w):
            raise OpError(f"{op} window {k}x{k} is larger than its {h}x{w} input")
        if op == "conv2d":
            s, pad = a["stride"], a["padding"]
            out = (a["filters"], F.conv_output_size(h, k, s, pad), F.conv_output_size(w, k, s, pad))
            return a, out, {"weight": (a["filters"], c, k, k), "bias": (a["filters"],)}
        s = a["stride"]
        return a, (c, F.pool_output_size(h, k, s), F.pool_output_size(w, k, s)), {}

    if op == "softmax" and len(x) != 1:
        raise OpError(f"softmax needs a 1-D input, got {_shape(x)}: put a flatten layer before it")
    if op == "flatten":
        n = 1
        for d in x:
            n *= d
        return a, (n,), {}
    if op == "add" and in_shapes[0] != in_shapes[1]:
        raise OpError(f"add needs two inputs of equal shape, got {_shape(in_shapes[0])} and {_shape(in_shapes[1])}")
    return a, tuple(x), {}
