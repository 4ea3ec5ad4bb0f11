"""Fixed-point spiking networks: the integer reference of the `spiking_net` operator.

`simulate` runs the exact integer arithmetic the C kernels run (kernels_c/hk_snn.h), vectorised
over the batch: int32 membranes, integer weights, per-layer integer thresholds, IF or LIF (leak
u <- u - (u >> k)), soft or hard reset, direct or rate input coding with the xorshift32 stream the
firmware draws. Spike trains and counters are therefore identical on every board; only the final
conversion of the output membranes to float (one int->float conversion and one float multiply,
both correctly rounded in IEEE single precision) leaves the integers.

Linear maps are evaluated in float64, which is exact here: every operand is an integer and every
sum stays below 2^31 (`snn_spec.check_values` proves it), far inside float64's 2^53.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import functional as F
from .snn_spec import NeuronLayer, check_values, counter_names, geometry, normalize


@dataclass
class SimResult:
    output: np.ndarray               # float32 [N, units]: output membranes x output_scale
    membrane: np.ndarray             # int64 [N, units]: the output layer's membranes after T steps
    counters: dict[str, np.ndarray]  # name -> int64 [N], in `snn_spec.counter_names` order


# ---------------------------------------------------------------- input coding
def quantize_input(x: np.ndarray, input_bits: int) -> np.ndarray:
    """q = sign(x) * trunc(|clamp(x * 2^b, -2^b, 2^b)| + 0.5), computed in float32 exactly as the C
    does (the scaling by a power of two is exact; the add and truncation are IEEE single)."""
    m = np.float32(2 ** input_bits)
    v = np.clip(np.asarray(x, np.float32) * m, -m, m).astype(np.float32)
    mag = np.trunc(np.abs(v) + np.float32(0.5)).astype(np.int64)
    return np.where(v < 0, -mag, mag)


def xorshift32(seed: int, n: int) -> np.ndarray:
    """The first n outputs of Marsaglia's xorshift32 (13, 17, 5) from `seed` (uint32)."""
    return _xorshift32(int(seed) & 0xFFFFFFFF, int(n)).copy()


@lru_cache(maxsize=8)
def _xorshift32(seed: int, n: int) -> np.ndarray:
    out = np.empty(n, np.uint32)
    s = seed
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        out[i] = s
    out.setflags(write=False)
    return out


def to_hwc(x: np.ndarray) -> np.ndarray:
    """[N, C, H, W] -> [N, H*W*C]: the order the C keeps maps in (channels innermost)."""
    return x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1)


def rate_spikes(q: np.ndarray, attrs: dict) -> np.ndarray:
    """Signed input spikes [T, N, C, H, W] in {-1, 0, 1}: at step t, input j (in HWC order) draws
    r = xorshift32 >> (32 - input_bits) and spikes when r < |q_j|, with q_j's sign."""
    T, bits = attrs["timesteps"], attrs["input_bits"]
    n, c, h, w = q.shape
    r = (xorshift32(attrs["seed"], T * c * h * w) >> np.uint32(32 - bits)).astype(np.int64)
    r = r.reshape(T, 1, h, w, c).transpose(0, 1, 4, 2, 3)          # HWC draw order -> [T, 1, C, H, W]
    return (r < np.abs(q)[None]) * np.sign(q)[None]


# ---------------------------------------------------------------- layers
def linear(layer: NeuronLayer, s: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The input current (without bias) of a layer for input s [N, C, H, W]: sum-pool, then the
    conv or dense map. Exact for integer operands (float64, sums < 2^31)."""
    s = np.asarray(s, np.float64)
    p = layer.pool
    if p > 1:
        c, ph, pw = layer.pooled
        s = s[:, :, :ph * p, :pw * p].reshape(len(s), c, ph, p, pw, p).sum(axis=(3, 5))
    w = np.asarray(weight, np.float64)
    if layer.kind == "conv":
        y = F.conv2d(s, w, np.zeros(w.shape[0]), layer.stride, layer.padding)
    else:
        y = s.reshape(len(s), -1) @ w.T
    return np.rint(y).astype(np.int64)


def leak(u: np.ndarray, shift: int) -> np.ndarray:
    """u - floor(u / 2^shift): the LIF leak as an arithmetic shift (IF: shift 0, no leak)."""
    return u - (u >> shift) if shift else u


# ---------------------------------------------------------------- the network
def _prepare(attrs: dict, params: dict, in_shape):
    a = normalize(attrs)
    layers = geometry(a, in_shape)
    p = check_values(a, layers, params)
    return a, layers, p


def simulate(attrs: dict, params: dict, X, in_shape=None) -> SimResult:
    """Run a spiking_net node (model-file attrs and params) on the batch X [N, *in_shape]."""
    X = np.asarray(X, np.float32)
    in_shape = tuple(in_shape) if in_shape is not None else X.shape[1:]
    a, layers, p = _prepare(attrs, params, in_shape)
    n = len(X)
    x = quantize_input(X.reshape((n,) + layers[0].in_dims), a["input_bits"])
    T, shift = a["timesteps"], a["leak_shift"]
    first = layers[0]

    def bias(l, shape_like):
        b = p[f"{l.name}.bias"]
        return b.reshape((1, -1) + (1,) * (shape_like.ndim - 2))

    u, thr, spikes = [], [], {}
    for l in layers:
        theta = int(p[f"{l.name}.threshold"][0]) if l.spiking else 0
        u0 = theta // 2 if (l.spiking and a["v_init"] == "half") else 0
        shape = (n,) + (l.out_dims if l.kind == "conv" else (l.out_dims[0],))
        u.append(np.full(shape, u0, np.int64))
        thr.append(theta)
        if l.spiking:
            spikes[l.name] = np.zeros(n, np.int64)
    synops = np.zeros(n, np.int64)
    fan = [l.fanout() for l in layers]

    if a["coding"] == "direct":
        cur0 = linear(first, x, p[f"{first.name}.weight"])
        cur0 = cur0 + bias(first, cur0)
    else:
        spk_in = rate_spikes(x, a)
        n_in = np.abs(spk_in).sum(axis=(2, 3, 4))                   # [T, N]
        spikes_in = n_in.sum(axis=0)
        synops += (np.abs(spk_in) * fan[0][None, None]).sum(axis=(0, 2, 3, 4))

    for t in range(T):
        s = None
        for i, l in enumerate(layers):
            if i == 0 and a["coding"] == "direct":
                cur = cur0
            else:
                src = spk_in[t] if i == 0 else s
                cur = linear(l, src, p[f"{l.name}.weight"])
                cur = cur + bias(l, cur)
            if not l.spiking:
                u[i] += cur
                break
            u[i] = leak(u[i], shift) + cur
            fired = u[i] >= thr[i]
            if a["reset"] == "soft":
                u[i] -= fired * thr[i]
            else:
                u[i][fired] = 0
            s = fired.reshape((n,) + l.out_dims).astype(np.int64)
            spikes[l.name] += s.reshape(n, -1).sum(axis=1)
            synops += (s * fan[i + 1][None]).reshape(n, -1).sum(axis=1)
    for v in u:
        assert np.abs(v).max(initial=0) <= 2 ** 31 - 1, "membrane outside int32: check_values is wrong"

    mem = u[-1]
    out = mem.astype(np.int32).astype(np.float32) * p["output_scale"][0]
    counters = {}
    for name in counter_names(a, layers):
        if name == "spikes_in":
            counters[name] = spikes_in
        elif name == "synops":
            counters[name] = synops
        else:
            counters[name] = spikes[name[len("spikes_"):]]
    return SimResult(output=out.astype(np.float32), membrane=mem, counters=counters)


def forward(attrs: dict, params: dict, X) -> np.ndarray:
    """The node's float32 output for the batch X (what `reference.forward` runs)."""
    return simulate(attrs, params, X).output


def model_counters(model, X) -> dict[str, np.ndarray]:
    """Reference counters of every spiking_net node of a loaded model, named as in the firmware's
    manifest (`<node>.<counter>`), for the batch X [N, *input_shape] (or [N, prod])."""
    from .modelfile import LoadedModel, load
    from .reference import forward_trace

    if not isinstance(model, LoadedModel):
        model = load(model)
    layers = [layer for layer in model.layers if layer["op"] == "spiking_net"]
    if not layers:
        return {}
    trace = forward_trace(model, X)
    out = {}
    for layer in layers:
        x = trace[layer["inputs"][0]]
        res = simulate(layer["attrs"], model.params(layer), x, model.shapes[layer["inputs"][0]])
        out.update({f"{layer['name']}.{k}": v for k, v in res.counters.items()})
    return out
