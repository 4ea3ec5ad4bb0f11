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
    minimum: int = 1              # smallest allowed value of an int attribute


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
    # A whole spiking network in one node; its attributes are checked by snn_spec (docs/snn.md).
    "spiking_net": OpSpec(1),
    # A spiking network of magneto-electric LIF neurons (stochastic firing); checked by me_snn (docs/me-neuron.md).
    "me_spiking_net": OpSpec(1),
    # Binary- or int8-kernel conv LIF layers trained by STDP, pooled spike counts out; checked by stdp (docs/stdp.md).
    "binary_snn": OpSpec(1),
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
            if v < a.minimum:
                raise OpError(f"attribute {key!r} must be >= {a.minimum}, not {v}")
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
    if spec.n_inputs is None:  # a variable number of inputs (concat): two or more
        if len(in_shapes) < 2:
            raise OpError(f"{op} takes two or more inputs, got {len(in_shapes)}")
    elif len(in_shapes) != spec.n_inputs:
        raise OpError(f"{op} takes {spec.n_inputs} input(s), got {len(in_shapes)}")
    if op == "spiking_net":
        from . import snn_spec
        try:
            return snn_spec.check(attrs, in_shapes)
        except snn_spec.SpecError as e:
            raise OpError(str(e)) from None
    if op == "me_spiking_net":
        from . import me_snn, snn_spec
        try:
            return me_snn.check(attrs, in_shapes)
        except snn_spec.SpecError as e:
            raise OpError(str(e)) from None
    if op == "binary_snn":
        from . import stdp
        try:
            return stdp.check(attrs, in_shapes)
        except stdp.SpecError as e:
            raise OpError(str(e)) from None
    a = normalize_attrs(op, attrs)
    if op in SHAPES:
        out, params = SHAPES[op](a, in_shapes)
        return a, tuple(out), params
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


# ---------------------------------------------------------------- interchange ops
# Operators added for .tflite import/export (docs/interchange.md). An op with a shape rule of its
# own registers it in SHAPES: fn(attrs, in_shapes) -> (output shape, {param role: shape}).
SHAPES: dict = {}


def _chw(op: str, x) -> tuple[int, int, int]:
    if len(x) != 3:
        raise OpError(f"{op} needs a [C, H, W] input, got {_shape(x)}")
    return tuple(x)


def _dwconv2d_shape(a, in_shapes):
    c, h, w = _chw("dwconv2d", in_shapes[0])
    k, s, pad, m = a["kernel"], a["stride"], a["padding"], a["multiplier"]
    if pad == "valid" and (k > h or k > w):
        raise OpError(f"dwconv2d window {k}x{k} is larger than its {h}x{w} input")
    out = (c * m, F.conv_output_size(h, k, s, pad), F.conv_output_size(w, k, s, pad))
    return out, {"weight": (c * m, k, k), "bias": (c * m,)}


def _pad_shape(a, in_shapes):
    c, h, w = _chw("pad", in_shapes[0])
    return (c, h + a["top"] + a["bottom"], w + a["left"] + a["right"]), {}


def _mean_shape(a, in_shapes):
    c, _, _ = _chw("mean", in_shapes[0])
    if a["keepdims"] > 1:
        raise OpError(f"attribute 'keepdims' must be 0 or 1, not {a['keepdims']}")
    return ((c, 1, 1) if a["keepdims"] else (c,)), {}


def _concat_shape(a, in_shapes):
    first = in_shapes[0]
    for s in in_shapes[1:]:
        if len(s) != len(first) or tuple(s[1:]) != tuple(first[1:]):
            raise OpError(f"concat joins along the first axis (channels); the other axes must agree, "
                          f"got {_shape(first)} and {_shape(s)}")
    return (sum(s[0] for s in in_shapes),) + tuple(first[1:]), {}


def _same_shapes(op):
    def rule(a, in_shapes):
        if in_shapes[0] != in_shapes[1]:
            raise OpError(f"{op} needs two inputs of equal shape, got {_shape(in_shapes[0])} and {_shape(in_shapes[1])}")
        return in_shapes[0], {}
    return rule


def _const_shape(a, in_shapes):
    return in_shapes[0], {"value": tuple(in_shapes[0])}


def _flatten_hwc_shape(a, in_shapes):
    c, h, w = _chw("flatten_hwc", in_shapes[0])
    return (c * h * w,), {}


OPS.update({
    # depthwise convolution: output channel o reads input channel o // multiplier
    "dwconv2d": OpSpec(1, {"kernel": Attr(int), "stride": Attr(int, 1),
                           "padding": Attr(str, "same", F.PADDINGS), "multiplier": Attr(int, 1)},
                       ("weight", "bias")),
    "pad": OpSpec(1, {k: Attr(int, 0, minimum=0) for k in ("top", "bottom", "left", "right")}),
    "mean": OpSpec(1, {"keepdims": Attr(int, 0, minimum=0)}),  # over H and W of [C, H, W]
    "concat": OpSpec(None),             # along channels ([C, H, W]) or the only axis ([N])
    "mul": OpSpec(2),
    "add_const": OpSpec(1, {}, ("value",)),   # x + value (value has x's shape)
    "mul_const": OpSpec(1, {}, ("value",)),   # x * value
    "relu6": OpSpec(1),                 # min(max(x, 0), 6)
    "relu1": OpSpec(1),                 # min(max(x, -1), 1) (TFLite RELU_N1_TO_1)
    "tanh": OpSpec(1),
    "gelu_erf": OpSpec(1),              # exact GELU: 0.5 x (1 + erf(x / sqrt 2))
    "flatten_hwc": OpSpec(1),           # [C, H, W] -> [H*W*C] in channels-last order (TFLite's RESHAPE)
})
SHAPES.update({"dwconv2d": _dwconv2d_shape, "pad": _pad_shape, "mean": _mean_shape,
               "concat": _concat_shape, "mul": _same_shapes("mul"), "add_const": _const_shape,
               "mul_const": _const_shape, "flatten_hwc": _flatten_hwc_shape})


# ---------------------------------------------------------------- MEANet (docs/meanet.md)
def _meanet_hard(a, n: int) -> int:
    """Check the `hard` attribute against n classes; returns the number of hard classes."""
    from .meanet import parse_hard
    try:
        return len(parse_hard(a["hard"], n))
    except ValueError as e:
        raise OpError(str(e)) from None


def _meanet_gate_shape(a, in_shapes):
    x = in_shapes[0]
    if len(x) != 1 or x[0] < 2:
        raise OpError(f"meanet_gate needs 1-D exit logits of at least 2 classes, got {_shape(x)}")
    _meanet_hard(a, x[0])
    return tuple(x), {"threshold": (1,)}


def _meanet_merge_shape(a, in_shapes):
    p, ext = in_shapes
    if len(p) != 1 or len(ext) != 1:
        raise OpError(f"meanet_merge needs the gate's [n] and the extension's [n_hard], got "
                      f"{_shape(p)} and {_shape(ext)}")
    n_hard = _meanet_hard(a, p[0])
    if ext[0] != n_hard:
        raise OpError(f"meanet_merge: the extension gives {ext[0]} logits for {n_hard} hard classes")
    return tuple(p), {}


OPS.update({
    # softmax of the exit logits + the edge/extension/cloud decision (entropy > or confidence <
    # threshold -> cloud); `hard` = comma-separated class indices
    "meanet_gate": OpSpec(1, {"hard": Attr(str), "criterion": Attr(str, "entropy", ("entropy", "confidence"))},
                          ("threshold",)),
    # the gate's distribution with the hard classes' mass split by softmax(extension logits)
    "meanet_merge": OpSpec(2, {"hard": Attr(str)}),
})
SHAPES.update({"meanet_gate": _meanet_gate_shape, "meanet_merge": _meanet_merge_shape})


# ---------------------------------------------------------------- transformer ops (models/transformer.py, docs/quake.md)
def _tokens(op: str, x) -> tuple[int, int]:
    if len(x) != 2:
        raise OpError(f"{op} needs tokens [T, D], got {_shape(x)}")
    return tuple(x)


def _patches_shape(a, in_shapes):
    c, h, w = _chw("patches", in_shapes[0])
    ph, pw = a["height"], a["width"]
    if h % ph or w % pw:
        raise OpError(f"patches of {ph}x{pw} do not tile a {h}x{w} input")
    return ((h // ph) * (w // pw), c * ph * pw), {}


def _token_dense_shape(a, in_shapes):
    t, d = _tokens("token_dense", in_shapes[0])
    return (t, a["units"]), {"weight": (a["units"], d), "bias": (a["units"],)}


def _layernorm_shape(a, in_shapes):
    x = in_shapes[0]
    if len(x) < 1:
        raise OpError("layernorm needs an input of rank 1 or more")
    return tuple(x), {"weight": (x[-1],), "bias": (x[-1],)}


def _attention_shape(a, in_shapes):
    t, d = _tokens("attention", in_shapes[0])
    if d % a["heads"]:
        raise OpError(f"attention: {d} features do not split into {a['heads']} heads")
    return (t, d), {"qkv_weight": (3 * d, d), "qkv_bias": (3 * d,), "out_weight": (d, d), "out_bias": (d,)}


def _token_mean_shape(a, in_shapes):
    _, d = _tokens("token_mean", in_shapes[0])
    return (d,), {}


OPS.update({
    "patches": OpSpec(1, {"height": Attr(int), "width": Attr(int)}),   # [C, H, W] -> [T, C*h*w]
    "token_dense": OpSpec(1, {"units": Attr(int)}, ("weight", "bias")),  # dense on every token of [T, D]
    "layernorm": OpSpec(1, {}, ("weight", "bias")),                     # over the last axis, eps 1e-5
    # multi-head self-attention of [T, D]; its softmax follows `exp`
    "attention": OpSpec(1, {"heads": Attr(int, 1)}, ("qkv_weight", "qkv_bias", "out_weight", "out_bias")),
    "token_mean": OpSpec(1),                                            # [T, D] -> [D]
})
SHAPES.update({"patches": _patches_shape, "token_dense": _token_dense_shape, "layernorm": _layernorm_shape,
               "attention": _attention_shape, "token_mean": _token_mean_shape})


# ---------------------------------------------------------------- spiking reservoir policy (docs/reservoir-rl.md)
def _lsm_policy_check(a, in_shapes):
    from . import reservoir
    try:
        _, out, params = reservoir.check(a, in_shapes)
    except reservoir.LSMError as e:
        raise OpError(str(e)) from None
    return out, params


OPS.update({
    # a recurrent LIF reservoir + integer readout, one control step per inference; the input is
    # [observation..., reset flag], the output one score per action; state persists across calls
    "lsm_policy": OpSpec(1, {"neurons": Attr(int), "excitatory": Attr(int), "timesteps": Attr(int, 100),
                             "leak_shift": Attr(int, 4), "input_bits": Attr(int, 8), "seed": Attr(int, 1),
                             "hidden": Attr(int), "actions": Attr(int, minimum=2),
                             "out_shift": Attr(int, 0, minimum=0)},
                         ("gain", "threshold", "w_in", "w_rec", "w1", "b1", "w2", "b2", "out_scale")),
})
SHAPES.update({"lsm_policy": _lsm_policy_check})
