"""The `spiking_net` operator: its attributes, its geometry, and the bounds that keep its integers
in range.

One node holds a whole spiking network (docs/snn.md). Shared by the model-file validation
(`opset.check` calls `check`), the integer reference (`snn.py`) and the code generator
(`codegen/ops_snn.py`), so all three read the attributes the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import functional as F

NEURONS = ("if", "lif")
RESETS = ("soft", "hard")
CODINGS = ("direct", "rate")
V_INITS = ("zero", "half")
WEIGHT_BITS = (8, 16)
LAYER_TYPES = ("conv", "dense", "avgpool")
INT32_MAX = 2 ** 31 - 1
UINT32_MAX = 2 ** 32 - 1
MAX_TIMESTEPS = 4096

# attribute: (kind, default, allowed values or (lo, hi))
_ATTRS = {
    "timesteps": (int, None, (1, MAX_TIMESTEPS)),
    "neuron": (str, "if", NEURONS),
    "leak_shift": (int, 0, (0, 30)),
    "reset": (str, "soft", RESETS),
    "v_init": (str, "zero", V_INITS),
    "coding": (str, "direct", CODINGS),
    "input_bits": (int, 8, (1, 15)),
    "seed": (int, 1, (1, UINT32_MAX)),
    "weight_bits": (int, 16, WEIGHT_BITS),
}


class SpecError(ValueError):
    """A spiking_net's attributes or parameters are out of range."""


@dataclass(frozen=True)
class NeuronLayer:
    """One conv or dense layer of neurons, with the average pooling before it folded in.

    `in_dims` is the map that feeds it before pooling ([C, H, W]; a 1-D input is [n, 1, 1]);
    `pooled` is that map after the pool of size `pool` (1: none). A spike of input neuron (c, y, x)
    adds the layer's weights of pooled position (c, y // pool, x // pool)."""

    index: int                       # position in attrs["layers"]
    kind: str                        # "conv" | "dense"
    in_dims: tuple[int, int, int]
    pool: int
    pooled: tuple[int, int, int]
    out_dims: tuple[int, int, int]   # dense: [units, 1, 1]
    spiking: bool                    # False: the output layer, which integrates without spiking
    kernel: int = 1
    stride: int = 1
    padding: str = "valid"

    @property
    def name(self) -> str:
        return f"l{self.index}"

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_dims))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_dims))

    @property
    def pads(self) -> tuple[int, int, int, int]:
        _, h, w = self.pooled
        return F.conv_padding(h, w, self.kernel, self.stride, self.padding) if self.kind == "conv" else (0, 0, 0, 0)

    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "conv":
            return (self.out_dims[0], self.pooled[0], self.kernel, self.kernel)
        return (self.out_dims[0], int(np.prod(self.pooled)))

    def fanout(self) -> np.ndarray:
        """Synaptic operations one spike of each input neuron causes, [C, H, W] of the unpooled map."""
        c, ph, pw = self.pooled
        if self.kind == "dense":
            per = np.full((c, ph, pw), self.out_dims[0], np.int64)
        else:
            f, ho, wo = self.out_dims
            cols = np.ones((ho * wo, c * self.kernel ** 2))
            per = F.col2im(cols, (1, c, ph, pw), self.kernel, self.stride, self.pads, (ho, wo))[0]
            per = np.rint(per).astype(np.int64) * f
        _, h, w = self.in_dims
        out = np.zeros(self.in_dims, np.int64)
        p = self.pool
        out[:, :ph * p, :pw * p] = per.repeat(p, axis=1).repeat(p, axis=2)
        return out

    def macs(self) -> int:
        """Multiply-accumulates of this layer run once as an ANN (conv: every in-bounds tap)."""
        return int(self.fanout()[:, ::self.pool, ::self.pool].sum())


def _check_value(key: str, v, kind, choices) -> None:
    if kind is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"attribute {key!r} must be an integer, not {v!r}")
        if key == "weight_bits":
            if v not in choices:
                raise SpecError(f"attribute 'weight_bits' must be one of {', '.join(map(str, choices))}, not {v}")
        elif not choices[0] <= v <= choices[1]:
            raise SpecError(f"attribute {key!r} must be in {choices[0]}..{choices[1]}, not {v}")
    elif not isinstance(v, str) or v not in choices:
        raise SpecError(f"attribute {key!r} must be one of {', '.join(choices)}, not {v!r}")


def _layer_entry(i: int, e) -> dict:
    if not isinstance(e, dict):
        raise SpecError(f"layers[{i}] must be an object, got {type(e).__name__}")
    t = e.get("type")
    if t not in LAYER_TYPES:
        raise SpecError(f"layers[{i}]: type must be one of {', '.join(LAYER_TYPES)}, not {t!r}")
    table = {"conv": {"filters": None, "kernel": None, "stride": 1, "padding": "same"},
             "dense": {"units": None}, "avgpool": {"size": None}}[t]
    unknown = sorted(set(e) - set(table) - {"type"})
    if unknown:
        raise SpecError(f"layers[{i}] ({t}): unknown key {unknown[0]!r} (known: {', '.join(sorted(table))})")
    out = {"type": t}
    for k, default in table.items():
        v = e.get(k, default)
        if v is None:
            raise SpecError(f"layers[{i}] ({t}) needs {k!r}")
        if k == "padding":
            if v not in F.PADDINGS:
                raise SpecError(f"layers[{i}]: padding must be one of {', '.join(F.PADDINGS)}, not {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"layers[{i}] ({t}): {k} must be a positive integer, not {v!r}")
        out[k] = v
    return out


def normalize(attrs: dict) -> dict:
    """Type-check the attributes and fill in defaults (unknown names are errors)."""
    known = set(_ATTRS) | {"layers", "exp"}
    unknown = sorted(set(attrs) - known)
    if unknown:
        raise SpecError(f"unknown attribute {unknown[0]!r} for spiking_net (known: {', '.join(sorted(known))})")
    out = {}
    for key, (kind, default, choices) in _ATTRS.items():
        v = attrs.get(key, default)
        if v is None:
            raise SpecError(f"spiking_net needs attribute {key!r}")
        _check_value(key, v, kind, choices)
        out[key] = v
    if out["neuron"] == "if" and out["leak_shift"] != 0:
        raise SpecError("leak_shift must be 0 for neuron 'if' (use neuron 'lif' for a leak)")
    if out["neuron"] == "lif" and out["leak_shift"] == 0:
        raise SpecError("neuron 'lif' needs leak_shift >= 1 (u <- u - (u >> leak_shift) each step)")
    layers = attrs.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError("spiking_net needs attribute 'layers': a non-empty list")
    out["layers"] = [_layer_entry(i, e) for i, e in enumerate(layers)]
    if "exp" in attrs:
        out["exp"] = attrs["exp"]
    return out


def geometry(attrs: dict, in_shape) -> list[NeuronLayer]:
    """The neuron layers of normalized `attrs` for an input of shape `in_shape`."""
    in_shape = tuple(int(d) for d in in_shape)
    if len(in_shape) == 1:
        dims = (in_shape[0], 1, 1)
    elif len(in_shape) == 3:
        dims = in_shape
    else:
        raise SpecError(f"spiking_net needs a [C, H, W] or 1-D input, got {list(in_shape)}")
    flat = len(in_shape) == 1
    entries = [_layer_entry(i, e) for i, e in enumerate(attrs["layers"])]
    out: list[NeuronLayer] = []
    pool = 1
    for i, e in enumerate(entries):
        last = i == len(entries) - 1
        if e["type"] == "avgpool":
            if last:
                raise SpecError("layers: the last layer must be dense (the output layer), not avgpool")
            if pool != 1:
                raise SpecError(f"layers[{i}]: two avgpool layers in a row")
            if not out:
                raise SpecError(f"layers[{i}]: avgpool cannot pool the input (it pools spikes of a layer)")
            if flat:
                raise SpecError(f"layers[{i}]: avgpool needs a [C, H, W] map, the layer before is 1-D")
            pool = e["size"]
            if pool > dims[1] or pool > dims[2]:
                raise SpecError(f"layers[{i}]: pool {pool}x{pool} is larger than its {dims[1]}x{dims[2]} input")
            continue
        c, h, w = dims
        pooled = (c, h // pool, w // pool)
        if e["type"] == "conv":
            if flat:
                raise SpecError(f"layers[{i}]: conv needs a [C, H, W] input, the layer before is 1-D")
            k, s, pad = e["kernel"], e["stride"], e["padding"]
            if pad == "valid" and (k > pooled[1] or k > pooled[2]):
                raise SpecError(f"layers[{i}]: conv window {k}x{k} is larger than its {pooled[1]}x{pooled[2]} input")
            od = (e["filters"], F.conv_output_size(pooled[1], k, s, pad), F.conv_output_size(pooled[2], k, s, pad))
            layer = NeuronLayer(i, "conv", dims, pool, pooled, od, not last, k, s, pad)
        else:
            layer = NeuronLayer(i, "dense", dims, pool, pooled, (e["units"], 1, 1), not last)
            flat = True
        if last and layer.kind != "dense":
            raise SpecError("layers: the last layer (the output layer) must be dense")
        out.append(layer)
        dims, pool = layer.out_dims, 1
    return out


def counter_names(attrs: dict, layers: list[NeuronLayer]) -> list[str]:
    """The per-inference counters, in the order the C reports them."""
    names = ["spikes_in"] if attrs["coding"] == "rate" else []
    names += [f"spikes_{l.name}" for l in layers if l.spiking]
    return names + ["synops"]


def param_shapes(layers: list[NeuronLayer]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for l in layers:
        shapes[f"{l.name}.weight"] = l.weight_shape()
        shapes[f"{l.name}.bias"] = (l.out_dims[0],)
        if l.spiking:
            shapes[f"{l.name}.threshold"] = (1,)
    shapes["output_scale"] = (1,)
    return shapes


def check(attrs: dict, in_shapes: list[tuple[int, ...]]) -> tuple[dict, tuple[int, ...], dict]:
    """`opset.check` for spiking_net: (normalized attrs, output shape, {param role: shape})."""
    if len(in_shapes) != 1:
        raise SpecError(f"spiking_net takes 1 input, got {len(in_shapes)}")
    a = normalize(attrs)
    layers = geometry(a, in_shapes[0])
    return a, (layers[-1].out_dims[0],), param_shapes(layers)


# ---------------------------------------------------------------- value bounds
def input_amplitude(attrs: dict, layer: NeuronLayer) -> int:
    """The largest magnitude one input of this layer carries per step: spikes are 1, a directly
    coded input is |q| <= 2^input_bits."""
    return 2 ** attrs["input_bits"] if layer.index == 0 and attrs["coding"] == "direct" else 1


def max_current(attrs: dict, layer: NeuronLayer, weight: np.ndarray, bias: np.ndarray) -> int:
    """A bound on |bias + input current| of any neuron of the layer in one step (exact integers)."""
    w = np.abs(np.asarray(weight, np.int64)).reshape(weight.shape[0], -1).sum(axis=1)
    per_step = w * (layer.pool ** 2) * input_amplitude(attrs, layer) + np.abs(np.asarray(bias, np.int64))
    return int(per_step.max())


def check_values(attrs: dict, layers: list[NeuronLayer], params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check that the parameters are integers in range and that no int32 membrane or u32 counter
    can overflow in `timesteps` steps; return them as int64 arrays (output_scale as float32).

    The membrane bound: leak, reset and the threshold never increase |u|, so after t steps
    |u| <= |u_0| + t * max_current, and every partial sum inside a step is within that too. The
    check allows T + 1 steps: the C starts step t + 1 (leak and bias) while it fires step t, so
    after the last step it adds one more bias."""
    T = attrs["timesteps"]
    wmax = 2 ** (attrs["weight_bits"] - 1) - 1
    out: dict[str, np.ndarray] = {}
    for key, shape in param_shapes(layers).items():
        a = np.asarray(params[key])
        if a.shape != shape:
            raise SpecError(f"{key} has shape {list(a.shape)}, needs {list(shape)}")
        if key == "output_scale":
            s = a.astype(np.float32)
            if not (np.isfinite(s).all() and s[0] > 0):
                raise SpecError(f"output_scale must be a positive finite float, got {s[0]!r}")
            out[key] = s
            continue
        if not np.array_equal(a, np.rint(a)):
            raise SpecError(f"{key} must hold integers (spiking layers run in fixed point)")
        lim = {"weight": wmax, "bias": 2 ** 30, "threshold": 2 ** 30}[key.split(".")[1]]
        lo = 1 if key.endswith("threshold") else -lim
        if a.min(initial=0 if lo < 0 else lo) < lo or a.max(initial=0) > lim:
            raise SpecError(f"{key} must be within [{lo}, {lim}], got [{a.min():.0f}, {a.max():.0f}]")
        out[key] = np.rint(a).astype(np.int64)
    synops = 0
    for l in layers:
        cur = max_current(attrs, l, out[f"{l.name}.weight"], out[f"{l.name}.bias"])
        u0 = int(out[f"{l.name}.threshold"][0]) // 2 if (l.spiking and attrs["v_init"] == "half") else 0
        if u0 + (T + 1) * cur > INT32_MAX:
            raise SpecError(f"{l.name}: membranes could overflow int32 ({u0} + {T + 1} steps x {cur} > 2^31 - 1): "
                            "use smaller integer weights or fewer time steps")
        if l.index > 0 or attrs["coding"] == "rate":
            synops += T * int(l.fanout().sum())
    if synops > UINT32_MAX:
        raise SpecError(f"the synaptic-operation counter could overflow u32 ({synops} > 2^32 - 1)")
    return out
