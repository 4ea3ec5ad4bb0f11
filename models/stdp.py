"""The `binary_snn` operator: a stack of convolutional LIF layers with binary (+/-1, bit-packed on
the board) or int8 kernels, optional residual inputs, rate-coded input and pooled spike counts out.

Both STDP recipes (digits-stdp, digits-restocnet; docs/stdp.md) compile to this op followed by a
float readout (flatten -> dense -> softmax). This module holds its attributes, the bounds that keep
its integers in range, and the integer reference, which computes exactly what kernels_c/hk_binconv.h
computes: spike counts and counters are identical on every board.

Semantics of one inference (T = timesteps):
  q = clamp(round(x * 2^input_bits), 0, 2^input_bits)   (the spiking_net quantizer; x < 0 counts as 0)
  at every step t: input spikes s_in = xorshift32 rate code of q (models/snn.rate_spikes, seed reset
  per inference); then for each layer i in order, with S_i = its input map at step t:
      S_i = s_{i-1}                     (s_{-1} = s_in)
      S_i = concat(s_{i-1}, s_{i-2})    (residual layer, i >= 1: the skip path is summed into the
                                         same neurons through its own kernels)
      I   = conv_same(S_i, W_i)          (stride 1, odd k, zero padding)
      u   = u - floor(u / 2^leak_shift) + I      (leak_shift 0: IF)
      s_i = u >= threshold_i[f];  reset: soft u -= threshold, hard u = 0
  output[f, py, px] = sum over t and the pool x pool window of s_last (ragged edge dropped), float32.
Counters per inference: spikes_in, spikes_l<i>, synops = sum_i F_i * (input spikes in the k x k
window of every output pixel) -- each spike reaching a neuron's receptive field is one synaptic op.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESETS = ("soft", "hard")
KERNEL_BITS = (1, 8)
INT32_MAX = 2 ** 31 - 1
UINT32_MAX = 2 ** 32 - 1
MAX_KERNEL = 7
MAX_FILTERS = 64             # HK_BINCONV_MAX_FILTERS: a pixel's currents live on the stack
MAX_PATCH_BITS = 1024        # HK_BINCONV_MAX_WORDS (32) x 32: the packed receptive field lives on the stack

_ATTRS = {
    "timesteps": (int, None, (1, 4096)),
    "kernel_bits": (int, 1, KERNEL_BITS),
    "input_bits": (int, 8, (1, 15)),
    "seed": (int, 1, (1, UINT32_MAX)),
    "leak_shift": (int, 0, (0, 30)),
    "reset": (str, "hard", RESETS),
    "pool": (int, 2, (1, 64)),
}


class SpecError(ValueError):
    """A binary_snn's attributes or parameters are out of range."""


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer of LIF neurons. Its input is `c_direct` channels of the layer before (or the
    model input) followed, for a residual layer, by `c_res` channels of the layer two back."""

    index: int
    filters: int
    kernel: int
    c_direct: int
    c_res: int
    src_direct: int          # map index: 0 = input spikes, i + 1 = layer i's spikes
    src_res: int             # -1: no residual input
    h: int
    w: int

    @property
    def name(self) -> str:
        return f"l{self.index}"

    @property
    def c_in(self) -> int:
        return self.c_direct + self.c_res

    @property
    def pad(self) -> int:
        return (self.kernel - 1) // 2

    @property
    def patch_bits(self) -> int:
        return self.kernel * self.kernel * self.c_in

    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.filters, self.c_in, self.kernel, self.kernel)


# ---------------------------------------------------------------- attributes and geometry
def _check_value(key, v, kind, choices):
    if kind is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"attribute {key!r} must be an integer, not {v!r}")
        if key == "kernel_bits":
            if v not in choices:
                raise SpecError(f"attribute 'kernel_bits' must be 1 (binary) or 8 (int8), not {v}")
        elif not choices[0] <= v <= choices[1]:
            raise SpecError(f"attribute {key!r} must be in {choices[0]}..{choices[1]}, not {v}")
    elif not isinstance(v, str) or v not in choices:
        raise SpecError(f"attribute {key!r} must be one of {', '.join(choices)}, not {v!r}")


def _layer_entry(i: int, e) -> dict:
    if not isinstance(e, dict):
        raise SpecError(f"layers[{i}] must be an object, got {type(e).__name__}")
    unknown = sorted(set(e) - {"filters", "kernel", "residual"})
    if unknown:
        raise SpecError(f"layers[{i}]: unknown key {unknown[0]!r} (known: filters, kernel, residual)")
    out = {}
    for k, default in (("filters", None), ("kernel", None), ("residual", 0)):
        v = e.get(k, default)
        if v is None:
            raise SpecError(f"layers[{i}] needs {k!r}")
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (k != "residual" and v < 1):
            raise SpecError(f"layers[{i}]: {k} must be a {'0/1 flag' if k == 'residual' else 'positive integer'}, "
                            f"not {v!r}")
        out[k] = v
    if out["filters"] > MAX_FILTERS:
        raise SpecError(f"layers[{i}]: at most {MAX_FILTERS} filters per layer, not {out['filters']}")
    if out["kernel"] % 2 == 0 or out["kernel"] > MAX_KERNEL:
        raise SpecError(f"layers[{i}]: kernel must be odd and at most {MAX_KERNEL} (same padding), not {out['kernel']}")
    if out["residual"] not in (0, 1):
        raise SpecError(f"layers[{i}]: residual must be 0 or 1, not {out['residual']}")
    if out["residual"] and i == 0:
        raise SpecError("layers[0] cannot be residual (there is no layer two back)")
    return out


def normalize(attrs: dict) -> dict:
    """Type-check the attributes and fill in defaults (unknown names are errors)."""
    known = set(_ATTRS) | {"layers", "exp"}
    unknown = sorted(set(attrs) - known)
    if unknown:
        raise SpecError(f"unknown attribute {unknown[0]!r} for binary_snn (known: {', '.join(sorted(known))})")
    out = {}
    for key, (kind, default, choices) in _ATTRS.items():
        v = attrs.get(key, default)
        if v is None:
            raise SpecError(f"binary_snn needs attribute {key!r}")
        _check_value(key, v, kind, choices)
        out[key] = v
    layers = attrs.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError("binary_snn needs attribute 'layers': a non-empty list of {filters, kernel, residual}")
    out["layers"] = [_layer_entry(i, e) for i, e in enumerate(layers)]
    if "exp" in attrs:
        out["exp"] = attrs["exp"]
    return out


def geometry(attrs: dict, in_shape) -> list[ConvLayer]:
    """The conv layers of normalized `attrs` for an input of shape [C, H, W]."""
    in_shape = tuple(int(d) for d in in_shape)
    if len(in_shape) != 3:
        raise SpecError(f"binary_snn needs a [C, H, W] input, got {list(in_shape)}")
    c, h, w = in_shape
    chans = [c]                                  # channels of map j (0: input)
    out = []
    for i, e in enumerate(attrs["layers"]):
        res = e["residual"]
        layer = ConvLayer(i, e["filters"], e["kernel"], chans[i], chans[i - 1] if res else 0, i,
                          i - 1 if res else -1, h, w)
        if layer.patch_bits > MAX_PATCH_BITS:
            raise SpecError(f"layers[{i}]: receptive field of {layer.patch_bits} bits (k*k*C) exceeds {MAX_PATCH_BITS}")
        out.append(layer)
        chans.append(e["filters"])
    p = attrs["pool"]
    if p > h or p > w:
        raise SpecError(f"pool {p}x{p} is larger than the {h}x{w} maps")
    return out


def output_shape(attrs: dict, layers: list[ConvLayer]) -> tuple[int, int, int]:
    last, p = layers[-1], attrs["pool"]
    return (last.filters, last.h // p, last.w // p)


def counter_names(layers: list[ConvLayer]) -> list[str]:
    """The per-inference counters, in the order the C reports them."""
    return ["spikes_in"] + [f"spikes_{l.name}" for l in layers] + ["synops"]


def param_shapes(layers: list[ConvLayer]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for l in layers:
        shapes[f"{l.name}.weight"] = l.weight_shape()
        shapes[f"{l.name}.threshold"] = (l.filters,)
    return shapes


def check(attrs: dict, in_shapes) -> tuple[dict, tuple[int, ...], dict]:
    """`opset.check` for binary_snn: (normalized attrs, output shape, {param role: shape})."""
    if len(in_shapes) != 1:
        raise SpecError(f"binary_snn takes 1 input, got {len(in_shapes)}")
    a = normalize(attrs)
    layers = geometry(a, in_shapes[0])
    return a, output_shape(a, layers), param_shapes(layers)


def check_values(attrs: dict, layers: list[ConvLayer], params: dict) -> dict[str, np.ndarray]:
    """Check that weights are +/-1 (kernel_bits 1) or int8, thresholds positive integers, and that no
    int32 membrane or u32 counter can overflow; return them as int64 arrays.

    Membrane bound: leak and reset never increase |u|, a threshold crossing leaves u < 2 threshold
    (soft) or 0 (hard), so |u| <= threshold + T * max |I| at every point of the run."""
    out = {}
    for key, shape in param_shapes(layers).items():
        a = np.asarray(params[key])
        if a.shape != shape:
            raise SpecError(f"{key} has shape {list(a.shape)}, needs {list(shape)}")
        if not np.array_equal(a, np.rint(a)):
            raise SpecError(f"{key} must hold integers (the network runs in fixed point)")
        a = np.rint(a).astype(np.int64)
        if key.endswith("threshold"):
            if a.min() < 1 or a.max() > 2 ** 30:
                raise SpecError(f"{key} must be within [1, 2^30], got [{a.min()}, {a.max()}]")
        elif attrs["kernel_bits"] == 1:
            if not np.all(np.abs(a) == 1):
                raise SpecError(f"{key}: kernel_bits 1 needs weights of exactly -1 or +1")
        elif a.min() < -127 or a.max() > 127:
            raise SpecError(f"{key}: kernel_bits 8 needs weights within [-127, 127], got [{a.min()}, {a.max()}]")
        out[key] = a
    T, synops = attrs["timesteps"], 0
    for l in layers:
        cur = int(np.abs(out[f"{l.name}.weight"]).reshape(l.filters, -1).sum(axis=1).max())
        theta = int(out[f"{l.name}.threshold"].max())
        if 2 * theta + (T + 1) * cur > INT32_MAX:
            raise SpecError(f"{l.name}: membranes could overflow int32 (threshold {theta}, {T} steps x {cur}): "
                            "use fewer time steps or smaller weights")
        synops += T * l.filters * l.h * l.w * l.patch_bits
    if synops > UINT32_MAX:
        raise SpecError(f"the synaptic-operation counter could overflow u32 ({synops} > 2^32 - 1)")
    return out


# ---------------------------------------------------------------- the integer reference
@dataclass
class SimResult:
    output: np.ndarray               # float32 [N, F, H/p, W/p]: pooled spike counts of the last layer
    counts: list[np.ndarray]         # int64 [N, F_i, H, W] per layer: spikes over the T steps
    counters: dict[str, np.ndarray]  # name -> int64 [N], in counter_names order


def encode_input(X: np.ndarray, attrs: dict) -> np.ndarray:
    """Input spikes [T, N, C, H, W] in {0, 1}: the spiking_net quantizer and xorshift32 rate code
    (models/snn.py, bit-exact with kernels_c/hk_snn.h), with negative inputs counted as 0."""
    from .snn import quantize_input, rate_spikes
    q = np.maximum(quantize_input(X, attrs["input_bits"]), 0)
    return rate_spikes(q, attrs).astype(np.int8)


def windows(s: np.ndarray, k: int) -> np.ndarray:
    """im2col of a same-padded, stride-1 map: [N, C, H, W] -> [N, H, W, C*k*k] (a copy)."""
    n, c, h, w = s.shape
    p = (k - 1) // 2
    sp = np.pad(s, ((0, 0), (0, 0), (p, p), (p, p)))
    v = np.lib.stride_tricks.sliding_window_view(sp, (k, k), axis=(2, 3))   # [N, C, H, W, k, k]
    return np.ascontiguousarray(v.transpose(0, 2, 3, 1, 4, 5)).reshape(n, h, w, c * k * k)


def layer_input(maps: list[np.ndarray], l: ConvLayer) -> np.ndarray:
    """The input map of layer l at one step: its direct source, then its residual source."""
    if l.src_res < 0:
        return maps[l.src_direct]
    return np.concatenate([maps[l.src_direct], maps[l.src_res]], axis=1)


def current(s: np.ndarray, weight: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(I [N, F, H, W], window spike count [N, H, W]) of a same conv of 0/1 spikes. float32 is exact:
    every sum is an integer below 2^24 (|I| <= 127 * 2048)."""
    cols = windows(s.astype(np.float32, copy=False), k)
    wmat = np.asarray(weight, np.float32).reshape(weight.shape[0], -1)
    cur = cols @ wmat.T                                              # [N, H, W, F]
    return np.rint(cur).astype(np.int64).transpose(0, 3, 1, 2), np.rint(cols.sum(axis=3)).astype(np.int64)


def lif_step(u: np.ndarray, cur: np.ndarray, theta: np.ndarray, leak_shift: int, reset: str) -> np.ndarray:
    """One LIF step of int64 membranes [N, F, H, W] in place; returns the spikes (int8)."""
    if leak_shift:
        u -= u >> leak_shift
    u += cur
    fired = u >= theta.reshape(1, -1, 1, 1)
    if reset == "soft":
        u -= fired * theta.reshape(1, -1, 1, 1)
    else:
        u[fired] = 0
    return fired.astype(np.int8)


def sum_pool(counts: np.ndarray, p: int) -> np.ndarray:
    n, f, h, w = counts.shape
    ph, pw = h // p, w // p
    return counts[:, :, :ph * p, :pw * p].reshape(n, f, ph, p, pw, p).sum(axis=(3, 5))


def simulate(attrs: dict, params: dict, X, in_shape=None, *, batch: int = 512) -> SimResult:
    """Run a binary_snn node (model-file attrs and params) on the batch X [N, *in_shape]."""
    X = np.asarray(X, np.float32)
    in_shape = tuple(in_shape) if in_shape is not None else X.shape[1:]
    a = normalize(attrs)
    layers = geometry(a, in_shape)
    p = check_values(a, layers, params)
    X = X.reshape((len(X),) + in_shape)
    parts = [_simulate(a, layers, p, X[i:i + batch]) for i in range(0, len(X), batch)]
    return SimResult(output=np.concatenate([r.output for r in parts]),
                     counts=[np.concatenate([r.counts[i] for r in parts]) for i in range(len(layers))],
                     counters={k: np.concatenate([r.counters[k] for r in parts]) for k in parts[0].counters})


def _simulate(a: dict, layers: list[ConvLayer], p: dict, X: np.ndarray) -> SimResult:
    n = len(X)
    spk_in = encode_input(X, a)
    u = [np.zeros((n, l.filters, l.h, l.w), np.int64) for l in layers]
    counts = [np.zeros((n, l.filters, l.h, l.w), np.int64) for l in layers]
    synops = np.zeros(n, np.int64)
    for t in range(a["timesteps"]):
        maps = [spk_in[t]]
        for i, l in enumerate(layers):
            cur, npatch = current(layer_input(maps, l), p[f"{l.name}.weight"], l.kernel)
            synops += l.filters * npatch.reshape(n, -1).sum(axis=1)
            s = lif_step(u[i], cur, p[f"{l.name}.threshold"], a["leak_shift"], a["reset"])
            counts[i] += s
            maps.append(s)
    out = sum_pool(counts[-1], a["pool"]).astype(np.float32)
    counters = {"spikes_in": spk_in.reshape(a["timesteps"], n, -1).sum(axis=(0, 2)).astype(np.int64)}
    for l, c in zip(layers, counts):
        counters[f"spikes_{l.name}"] = c.reshape(n, -1).sum(axis=1)
    counters["synops"] = synops
    return SimResult(output=out, counts=counts, counters=counters)


def forward(attrs: dict, params: dict, X) -> np.ndarray:
    """The node's float32 output for the batch X (what `reference.forward` runs)."""
    return simulate(attrs, params, X).output


# ---------------------------------------------------------------- model files and board counters
def build_graph(attrs: dict, params: dict, input_shape, *, readout=None, name: str = "binary-snn",
                meta: dict | None = None) -> tuple[dict, dict]:
    """A model graph: the binary_snn node `snn`, then (with readout = (weight [10, n], bias [10]))
    flatten -> dense -> softmax. Without a readout the node is the output (tests, benches)."""
    from .network import GraphBuilder

    b = GraphBuilder(input_shape)
    b.add("binary_snn", ["input"], attrs, {k: np.asarray(v, np.float32) for k, v in params.items()}, name="snn")
    if readout is not None:
        w, bias = readout
        b.add("flatten", ["snn"], name="flatten")
        b.add("dense", ["flatten"], {"units": int(w.shape[0])}, {"weight": w, "bias": bias}, name="readout")
        b.add("softmax", ["readout"], name="softmax")
    return b.graph(name=name, meta=meta)


def model_counters(model, X) -> dict[str, np.ndarray]:
    """Reference counters of every binary_snn node of a loaded model, named as in the firmware's
    manifest (`<node>.<counter>`), for the batch X [N, *input_shape] (or [N, prod])."""
    from .modelfile import LoadedModel, load
    from .reference import forward_trace

    if not isinstance(model, LoadedModel):
        model = load(model)
    nodes = [layer for layer in model.layers if layer["op"] == "binary_snn"]
    if not nodes:
        return {}
    trace = forward_trace(model, X)
    out = {}
    for layer in nodes:
        src = layer["inputs"][0]
        res = simulate(layer["attrs"], model.params(layer), trace[src], model.shapes[src])
        out.update({f"{layer['name']}.{k}": v for k, v in res.counters.items()})
    return out


# Horowitz, ISSCC 2014, 45 nm (docs/references.md). energy_op_uj follows the SNN papers (a synaptic op
# = an fp32 accumulate, 0.9 pJ; the input is rate coded, so no first-layer MACs), as the spiking_net
# report does; with binary or int8 kernels and binary spikes a synaptic op is really an integer add
# (int32 add, 0.1 pJ), given beside it.
PJ_PER_SYNOP_FP32 = 0.9
PJ_PER_SYNOP_INT = 0.1


def metrics(manifest: dict, loaded_model, x_test, board_extras, *, instructions=None) -> dict:
    """The spiking keys of the run report for binary_snn nodes ({} for a model without one): board
    counters against the integer reference (`spike_agreement` = fraction of samples whose every
    counter matches), spikes and synaptic ops per inference, op-level energy.

    manifest      the compiled directory's hilkit.json ("extra" names the counters)
    loaded_model  the LoadedModel that was compiled
    x_test        the inputs that were sent, [N, *input_shape]
    board_extras  the `extra` u32 list of each of the N INFER replies
    instructions  optional per-inference instruction counts (QEMU): their mean and a linear fit
                  against synaptic operations"""
    ref = model_counters(loaded_model, x_test)
    if not ref:
        return {}
    names = list(manifest.get("extra") or [])
    board = np.asarray([list(e) for e in board_extras], dtype=np.int64).reshape(len(board_extras), -1)
    if len(board) != len(x_test):
        raise ValueError(f"{len(board)} counter rows for {len(x_test)} samples")
    if board.shape[1] != len(names):
        raise ValueError(f"the board returned {board.shape[1]} counters per inference, the manifest names {len(names)}")
    missing = [k for k in ref if k not in names]
    if missing:
        raise ValueError(f"the manifest has no counter {missing[0]!r}: compile the model again")
    col = {n: i for i, n in enumerate(names)}
    same = (board[:, [col[k] for k in ref]] == np.stack([ref[k] for k in ref], axis=1)).all(axis=1)
    spike_keys = [k for k in ref if k.rsplit(".", 1)[1].startswith("spikes_l")]
    synop_keys = [k for k in ref if k.endswith(".synops")]
    spikes = board[:, [col[k] for k in spike_keys]].sum(axis=1)
    synops = board[:, [col[k] for k in synop_keys]].sum(axis=1)
    out = {
        "timesteps": next(int(l["attrs"]["timesteps"]) for l in loaded_model.layers if l["op"] == "binary_snn"),
        "spike_agreement": float(same.mean()),
        "spike_mismatches": [int(i) for i in np.flatnonzero(~same)[:20]],
        "spikes_per_inference": float(spikes.mean()),
        "spikes_per_layer": {k: float(board[:, col[k]].mean()) for k in spike_keys},
        "synops_per_inference": float(synops.mean()),
        "energy_op_uj": float(synops.mean()) * PJ_PER_SYNOP_FP32 * 1e-6,
        "energy_op_source": "op-level 45 nm: synaptic ops x 0.9 pJ (rate-coded input, no MACs)",
        "energy_op_uj_int_add": float(synops.mean()) * PJ_PER_SYNOP_INT * 1e-6,
    }
    if instructions is not None and len(instructions) == len(synops) and len(synops) > 1 and np.ptp(synops) > 0:
        slope, intercept = np.polyfit(synops.astype(np.float64), np.asarray(instructions, np.float64), 1)
        out["instructions_vs_synops"] = {"slope": float(slope), "intercept": float(intercept), "n": int(len(synops))}
    return out


# ---------------------------------------------------------------- unsupervised training: shared machinery
# A layer learns from receptive-field patches of its input spike maps (convolution over time: the
# shared kernels see one window per presentation, windows drawn at random over the training
# images). In each presentation the layer's F kernel neurons (LIF, the inference leak) compete: the
# first to spike wins and laterally inhibits the others (winner-take-all), and only the winner's
# kernel learns, from the spike-time differences between its post spike and each synapse's pre
# spikes. Homeostasis: a neuron's training threshold is theta_h[f] + rho * r * (sum of its positive
# weights), r the layer's mean input rate (spikes per synapse per step), so a kernel must gather rho
# times the current its excitatory synapses bring at the mean rate (the role weight normalisation
# plays in the JETC paper; without it the kernel with the most +1s wins everything), and theta_h
# rises for kernels that win more than their share and falls for the others, so every kernel learns.

@dataclass(frozen=True)
class Competition:
    """The training-time dynamics of a layer's kernel neurons (not part of the inference op)."""

    rho: float = 2.0                 # threshold per unit of positive kernel weight at the mean input rate
    theta0: float = 2.0              # initial homeostatic threshold
    homeostasis: float = 0.2         # theta_h step per unit of excess win share
    batch: int = 256                 # presentations per update round
    rounds: int = 300                # update rounds per layer


def trace_maps(attrs: dict, params: dict, layers: list[ConvLayer], X: np.ndarray) -> list[np.ndarray]:
    """Spike maps over time, [T, N, C, H, W] int8, of the input and of each of `layers` (trained
    layers with their inference thresholds): what the next layer trains on."""
    a = normalize(attrs)
    spk = encode_input(X, a)
    T, n = a["timesteps"], len(X)
    maps = [spk] + [np.zeros((T, n, l.filters, l.h, l.w), np.int8) for l in layers]
    u = [np.zeros((n, l.filters, l.h, l.w), np.int64) for l in layers]
    for t in range(T):
        now = [spk[t]]
        for i, l in enumerate(layers):
            cur, _ = current(layer_input(now, l), params[f"{l.name}.weight"], l.kernel)
            s = lif_step(u[i], cur, np.asarray(params[f"{l.name}.threshold"], np.int64), a["leak_shift"], a["reset"])
            maps[i + 1][t] = s
            now.append(s)
    return maps


def layer_source(maps: list[np.ndarray], l: ConvLayer) -> np.ndarray:
    """The input of layer l over time, [T, N, c_in, H, W] (direct channels, then residual)."""
    src = [maps[l.src_direct]] + ([maps[l.src_res]] if l.src_res >= 0 else [])
    return np.concatenate(src, axis=2) if len(src) > 1 else src[0]


def patch_trains(src: np.ndarray, l: ConvLayer, idx) -> np.ndarray:
    """Spike trains of the receptive fields at (n, y, x) = idx: [M, T, k*k*c_in] int8, synapse order
    (c, ky, kx) as the weight tensor's."""
    T, _, c, _, _ = src.shape
    k, p = l.kernel, l.pad
    sp = np.pad(src, ((0, 0), (0, 0), (0, 0), (p, p), (p, p)))
    n, y, x = idx
    out = np.empty((len(n), T, c, k, k), np.int8)
    for dy in range(k):
        for dx in range(k):
            out[..., dy, dx] = sp[:, n, :, y + dy, x + dx]    # advanced indices first: [M, T, C]
    return out.reshape(len(n), T, c * k * k)


def active_windows(src: np.ndarray, l: ConvLayer):
    """(n, y, x) of every window with at least one input spike over the presentation."""
    total = src.sum(axis=0, dtype=np.float32)                  # [N, C, H, W]
    return np.nonzero(windows(total, l.kernel).sum(axis=3) > 0)


def compete(X: np.ndarray, W: np.ndarray, theta: np.ndarray, leak_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Winner-take-all over presentations X [M, T, D] of F LIF neurons with kernels W [F, D] and
    thresholds theta [F]: (winner [M] or -1 when no neuron spiked, its first spike step [M]).
    The first neuron to spike wins; a tie goes to the larger overshoot u - theta."""
    M, T, _ = X.shape
    I = X.astype(np.float32) @ W.T.astype(np.float32)          # [M, T, F]
    u = np.zeros((M, W.shape[0]))
    first = np.full(u.shape, T)
    over = np.full(u.shape, -np.inf)
    for t in range(T):
        if leak_shift:
            u -= np.floor(u / 2 ** leak_shift)
        u += I[:, t]
        new = (u >= theta) & (first == T)
        first[new] = t
        over[new] = (u - theta)[new]
    t_post = first.min(axis=1)
    score = np.where(first == t_post[:, None], over, -np.inf)
    winner = np.where(t_post < T, score.argmax(axis=1), -1)
    return winner, t_post


def pre_delays(x: np.ndarray, t_post: int) -> np.ndarray:
    """dt = t_post - (last pre spike at or before t_post) per synapse of one presentation x [T, D];
    inf for a synapse whose input did not spike by then."""
    seen = x[:t_post + 1] > 0
    last = np.where(seen.any(axis=0), t_post - np.argmax(seen[::-1], axis=0), -1)
    return np.where(last >= 0, t_post - last, np.inf)


def train_layer(src: np.ndarray, l: ConvLayer, rule, comp: Competition, leak_shift: int,
                rng: np.random.Generator, progress=None, windows_at=None) -> tuple[np.ndarray, dict]:
    """Learn layer l's kernels [F, c_in, k, k] from its input maps src [T, N, c_in, H, W] with `rule`
    (an object with init(F, D, rng) -> W and update(w, dt, rng) -> w). Presentations are drawn from
    the windows (n, y, x) `windows_at` (default: every window with an input spike). One update per
    kernel per round: the kernel learns from one presentation it won, drawn at random among them."""
    idx = active_windows(src, l) if windows_at is None else tuple(np.asarray(a) for a in windows_at)
    if len(idx[0]) == 0:
        raise ValueError(f"{l.name}: its input never spikes on the training images: nothing to learn")
    F = l.filters
    W = rule.init(F, l.patch_bits, rng)
    theta_h = np.full(F, comp.theta0)
    wins = np.zeros(F, np.int64)
    # the layer's mean input rate (spikes per synapse per step over the windows it learns from)
    sample = rng.integers(0, len(idx[0]), min(2000, len(idx[0])))
    rate = float(patch_trains(src, l, tuple(a[sample] for a in idx)).mean())
    for r in range(comp.rounds):
        pick = rng.integers(0, len(idx[0]), comp.batch)
        X = patch_trains(src, l, tuple(a[pick] for a in idx))
        theta = theta_h + comp.rho * rate * np.maximum(W, 0).sum(axis=1)
        winner, t_post = compete(X, W, theta, leak_shift)
        won = winner >= 0
        counts = np.bincount(winner[won], minlength=F)
        wins += counts
        if won.any():
            theta_h = np.maximum(theta_h + comp.homeostasis * (counts * F / won.sum() - 1), 0.0)
        for m in rng.permutation(np.flatnonzero(won)):
            f = winner[m]
            if counts[f] < 0:
                continue
            counts[f] = -1                                     # its one update of this round
            W[f] = rule.update(W[f], pre_delays(X[m], int(t_post[m])), rng)
        if progress is not None:
            progress(r + 1, comp.rounds)
    return W.reshape(l.weight_shape()), {"wins": wins.tolist(), "theta_h": np.round(theta_h, 3).tolist(),
                                         "input_rate": round(rate, 5)}


def calibrate_thresholds(src: np.ndarray, weight: np.ndarray, l: ConvLayer, percentile: float) -> np.ndarray:
    """Inference thresholds: per filter, the `percentile` of its positive per-step input currents
    over src [T, N, c_in, H, W] (at least 1). Without the training-time inhibition every neuron
    fires on its own; this sets how selective each one is."""
    curs = np.concatenate([current(src[t], weight, l.kernel)[0] for t in range(len(src))])   # [T*N, F, H, W]
    curs = curs.transpose(1, 0, 2, 3).reshape(l.filters, -1).astype(np.float64)
    out = np.ones(l.filters)
    for f in range(l.filters):
        pos = curs[f][curs[f] > 0]
        if pos.size:
            out[f] = max(1.0, np.rint(np.percentile(pos, percentile)))
    return out


# ---------------------------------------------------------------- the readout
def train_readout(F_train: np.ndarray, y_train: np.ndarray, seed: int, epochs: int = 60,
                  lr: float = 3e-3, weight_decay: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression on pooled spike counts F [N, n] (standardised during training, the
    standardisation folded into the returned dense weight [10, n] and bias [10], which read raw counts)."""
    from threadpoolctl import threadpool_limits

    from .layers import Dense
    from .optim import Adam
    from .train import cosine_lr, fit

    F_train = np.asarray(F_train, np.float64)
    mu, sd = F_train.mean(axis=0), F_train.std(axis=0) + 0.5     # a silent feature keeps weight ~0
    A = ((F_train - mu) / sd).astype(np.float32)
    init, shuffle = np.random.SeedSequence([seed, 7]).spawn(2)
    dense = Dense(A.shape[1], 10, np.random.default_rng(init))
    opt = Adam(dense.parameters(), lr=lr, weight_decay=weight_decay)
    with threadpool_limits(1, user_api="blas"):
        fit(dense, A, y_train, opt, epochs=epochs, batch_size=64, rng=np.random.default_rng(shuffle),
            lr_schedule=cosine_lr(lr, epochs))
    w = np.asarray(dense.params["weight"], np.float64) / sd[None, :]
    w[:, F_train.std(axis=0) == 0] = 0.0   # never seen active in training: keep its initial weight out
    b = np.asarray(dense.params["bias"], np.float64) - w @ mu
    return w.astype(np.float32), b.astype(np.float32)


# ---------------------------------------------------------------- the JETC 2018 rule (digits-stdp)
@dataclass(frozen=True)
class ConvSTDP:
    """Our reading of the convolutional STDP rule of Srinivasan, Panda and Roy (ACM JETC 2018):
    real-valued shared kernels in [0, 1] (weight bounds, soft: the step shrinks near the bound),
    updated when the kernel neuron wins the winner-take-all, per synapse, from dt = t_post - t_pre
    (pre spike at or before the post spike):
        potentiation  dw = +eta_pot * exp(-dt / tau) * (1 - w)     if dt <= window
        depression    dw = -eta_dep * w                              otherwise (no causal pre spike)
    Stored on the board as int8 (w * 127, rounded)."""

    eta_pot: float = 0.05
    eta_dep: float = 0.03
    tau: float = 4.0
    window: float = 8.0
    kernel_bits = 8

    def init(self, F: int, D: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(0.3, 0.7, (F, D))

    def update(self, w: np.ndarray, dt: np.ndarray, rng) -> np.ndarray:
        near = dt <= self.window
        pot = self.eta_pot * np.exp(-np.where(near, dt, 0.0) / self.tau) * (1.0 - w)
        return np.clip(w + np.where(near, pot, -self.eta_dep * w), 0.0, 1.0)

    def quantize(self, w: np.ndarray) -> np.ndarray:
        return np.rint(np.clip(w, 0.0, 1.0) * 127.0)

    def describe(self) -> dict:
        return {"rule": "conv-stdp (JETC 2018 reading)", "eta_pot": self.eta_pot, "eta_dep": self.eta_dep,
                "tau": self.tau, "window": self.window, "bounds": [0.0, 1.0], "stored": "int8 = round(127 w)"}


class RandomKernels:
    """No learning: kernels drawn once (the control for 'does STDP learn anything')."""

    def __init__(self, kernel_bits: int = 1):
        self.kernel_bits = kernel_bits

    def init(self, F, D, rng):
        return np.where(rng.random((F, D)) < 0.5, 1.0, -1.0) if self.kernel_bits == 1 else rng.uniform(0, 1, (F, D))

    def update(self, w, dt, rng):
        return w

    def quantize(self, w):
        return w if self.kernel_bits == 1 else np.rint(w * 127.0)

    def describe(self) -> dict:
        return {"rule": "random kernels (no learning): " + ("+/-1, p = 1/2" if self.kernel_bits == 1
                                                            else "U(0, 1) stored as int8 round(127 w)")}


# ---------------------------------------------------------------- a network trained layer by layer
@dataclass(frozen=True)
class NetConfig:
    """An STDP-trained binary_snn and its readout."""

    layers: tuple                      # ({"filters", "kernel", "residual"}, ...)
    rule: object                       # ConvSTDP, restocnet.HBSTDP, RandomKernels
    timesteps: int = 16
    leak_shift: int = 3
    reset: str = "hard"
    pool: int = 2
    input_bits: int = 8
    seed_code: int = 1                 # xorshift32 seed of the rate code
    competition: Competition = Competition()
    stdp_images: int = 400             # unlabelled training images the kernels learn from
    calibration_images: int = 200
    percentile: float = 97.0           # inference threshold: this percentile of positive currents
    readout_epochs: int = 60

    def attrs(self) -> dict:
        return {"timesteps": self.timesteps, "kernel_bits": self.rule.kernel_bits, "input_bits": self.input_bits,
                "seed": self.seed_code, "leak_shift": self.leak_shift, "reset": self.reset, "pool": self.pool,
                "layers": [dict(e) for e in self.layers]}


def train_network(cfg: NetConfig, X_train: np.ndarray, y_train: np.ndarray, seed: int, progress=None) -> dict:
    """Unsupervised layer-by-layer training of cfg's layers on a subset of X_train (labels unused),
    inference thresholds, then the supervised readout on every training image's pooled counts.
    Returns {"attrs", "params", "readout": (w, b), "layers": per-layer stats}."""
    from threadpoolctl import threadpool_limits

    attrs = cfg.attrs()
    layers = geometry(normalize(attrs), X_train.shape[1:])
    s_pick, s_train = np.random.SeedSequence([seed, 3]).spawn(2)
    sub = np.random.default_rng(s_pick).choice(len(X_train), min(cfg.stdp_images, len(X_train)), replace=False)
    rng = np.random.default_rng(s_train)
    params, stats = {}, []
    total = len(layers) * cfg.competition.rounds
    with threadpool_limits(1, user_api="blas"):
        for i, l in enumerate(layers):
            src = layer_source(trace_maps(attrs, params, layers[:i], X_train[sub]), l)
            # the recipes' progress(step, steps, loss, accuracy): STDP has neither (nan)
            prog = None if progress is None else (
                lambda r, n, i=i: progress(i * cfg.competition.rounds + r, total, float("nan"), float("nan")))
            w, st = train_layer(src, l, cfg.rule, cfg.competition, cfg.leak_shift, rng, prog)
            wq = cfg.rule.quantize(w)
            theta = calibrate_thresholds(src[:, :cfg.calibration_images], wq, l, cfg.percentile)
            params[f"{l.name}.weight"] = wq.astype(np.float32)
            params[f"{l.name}.threshold"] = theta.astype(np.float32)
            stats.append({"layer": l.name, "positive_weight_fraction": round(float((wq > 0).mean()), 4),
                          "thresholds": theta.astype(int).tolist(), **st})
        feats = simulate(attrs, params, X_train).output.reshape(len(X_train), -1)
    readout = train_readout(feats, y_train, seed, epochs=cfg.readout_epochs)
    train_acc = float(((feats @ readout[0].T + readout[1]).argmax(axis=1) == y_train).mean())
    return {"attrs": attrs, "params": params, "readout": readout, "layers": stats, "train_accuracy": train_acc}


def random_control(cfg: NetConfig) -> NetConfig:
    """cfg with its kernels left at a random draw of the same kind (RandomKernels of cfg's kernel
    bits: +/-1, or U(0, 1) stored as int8), the same threshold calibration and readout: what the
    learning rule has to beat. No update rounds are run (they would not change the kernels)."""
    from dataclasses import replace
    return replace(cfg, rule=RandomKernels(cfg.rule.kernel_bits), competition=replace(cfg.competition, rounds=0))


def evaluate(net: dict, X: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, spikes and synaptic ops per inference of a trained network (train_network's
    result: reference integers, float readout) on X [N, C, H, W]."""
    res = simulate(net["attrs"], net["params"], X)
    w, b = net["readout"]
    logits = res.output.reshape(len(X), -1) @ w.T + b
    return {"test_accuracy": float((logits.argmax(axis=1) == y).mean()),
            "train_accuracy": net["train_accuracy"],
            "spikes_per_layer": [float(c.reshape(len(X), -1).sum(axis=1).mean()) for c in res.counts],
            "spikes_per_inference": float(sum(c.reshape(len(X), -1).sum(axis=1).mean() for c in res.counts)),
            "synops_per_inference": float(res.counters["synops"].mean())}


def recipe(name: str, cfg: NetConfig, out_path, *, seed: int = 0, progress=None, meta: dict | None = None) -> dict:
    """Train cfg on the digits split, write the model file (binary_snn -> flatten -> dense ->
    softmax) and measure its test accuracy with the reference on the written file. The summary
    also holds the random-kernel control (`random_control`, same seed) under "random_kernels"."""
    import time

    from . import modelfile, reference
    from .data import DIGITS_SHAPE, as_images, digits_split

    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = digits_split()
    X_train, X_test = as_images(X_train), as_images(X_test)
    net = train_network(cfg, X_train, y_train, seed, progress)
    train_seconds = time.perf_counter() - t0
    w, b = net["readout"]
    info = {"recipe": name, "classes": 10, "dataset": "sklearn-digits",
            "split": "train_test_split(test_size=0.2, stratify=y, random_state=0)", "seed": int(seed),
            "stdp": {**cfg.rule.describe(), "images": cfg.stdp_images, "rounds": cfg.competition.rounds,
                     "batch": cfg.competition.batch, "rho": cfg.competition.rho, "percentile": cfg.percentile,
                     "layers": net["layers"]},
            "readout": f"softmax regression on pooled spike counts, adam, {cfg.readout_epochs} epochs", **(meta or {})}
    graph, arrays = build_graph(net["attrs"], net["params"], DIGITS_SHAPE, readout=(w, b), name=name, meta=info)
    model = modelfile.validate(graph, arrays)
    probs = reference.forward(model, X_test)
    test_accuracy = float((probs.argmax(axis=1) == y_test).mean())
    counters = model_counters(model, X_test)
    graph["meta"].update({"test_accuracy": round(test_accuracy, 6),
                          "train_accuracy": round(net["train_accuracy"], 6),
                          "spikes_per_inference": round(float(sum(v.mean() for k, v in counters.items()
                                                                  if ".spikes_l" in k)), 3),
                          "synops_per_inference": round(float(counters["snn.synops"].mean()), 3)})
    saved = modelfile.save(out_path, graph, arrays)
    control = evaluate(train_network(random_control(cfg), X_train, y_train, seed), X_test, y_test)
    return {"recipe": name, "path": str(out_path), "hash": saved.hash, "test_accuracy": test_accuracy,
            "train_accuracy": graph["meta"]["train_accuracy"], "test_samples": int(len(y_test)),
            "train_seconds": round(train_seconds, 3), "seed": int(seed),
            "params": int(sum(a.size for a in arrays.values())),
            "spikes_per_inference": graph["meta"]["spikes_per_inference"],
            "synops_per_inference": graph["meta"]["synops_per_inference"],
            "random_kernels": {"rule": RandomKernels(cfg.rule.kernel_bits).describe()["rule"],
                               **{k: round(control[k], 6) for k in ("test_accuracy", "train_accuracy",
                                                                    "spikes_per_inference", "synops_per_inference")}},
            "learned_minus_random_pt": round(100 * (test_accuracy - control["test_accuracy"]), 3)}


DIGITS_STDP = NetConfig(layers=({"filters": 16, "kernel": 5},), rule=ConvSTDP())


def digits_stdp(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """digits-stdp: one conv layer of 16 5x5 kernels learned by convolutional STDP (JETC 2018),
    int8 on the board, LIF (leak 1/8), T = 16, sum-pool 2, softmax readout. `epochs` scales the
    STDP update rounds (x100)."""
    from dataclasses import replace
    cfg = DIGITS_STDP
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        cfg = replace(cfg, competition=replace(cfg.competition, rounds=100 * int(epochs)))
    return recipe("digits-stdp", cfg, out_path, seed=seed, progress=progress)
