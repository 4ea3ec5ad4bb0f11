"""Spiking networks of magneto-electric LIF neurons: the `me_spiking_net` operator and digits-snn-me.

An `me_spiking_net` node is a `spiking_net` (docs/snn.md: integer weights, int32 membranes, LIF
leak u <- u - (u >> k), hard reset, direct or rate input coding) whose neurons fire at random
like the ME device (docs/me-neuron.md): each step, every spiking neuron reads its switching
probability from a small table indexed by its membrane, bin = clamp(u >> shift, 0, bins - 1),
draws r = xorshift32(fire state) >> 16 and fires when r < table[bin] (table entries are integers
0..65536, P = entry / 65536). The fire state starts at `fire_seed` every inference and draws once
per spiking neuron per step, layer by layer, in the C's memory order (conv [H][W][C], dense
[units]); the input coding keeps its own stream (`seed`), so the input spikes equal the
deterministic network's. Everything is integer, so the C (kernels_c/hk_me.h) reproduces every
spike on every board, the FPU-less Cortex-M0+ included.

The tables come from the fitted switching model of the device (`me_neuron.NeelBrown.p_step`):
a membrane at the layer's integer threshold is the oxide voltage V_50 at which one step fires with
probability 1/2. `simulate_device` runs the same network with float membranes and per-neuron
device parameters (barrier, capacitance) for the variation study.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from . import me_neuron as M
from . import snn, snn_spec
from .snn_spec import SpecError

P_ONE = 65536                  # table entries are P * 2^16
MAX_BINS = 4096
_ME_ATTRS = {"fire_seed": (1, snn_spec.UINT32_MAX), "table_bins": (2, MAX_BINS)}
_ME_DEFAULTS = {"fire_seed": 0x9E3779B9, "table_bins": 64}


# ---------------------------------------------------------------- the operator's spec
def normalize(attrs: dict) -> dict:
    """spiking_net's attributes (neuron 'lif', reset 'hard': the device discharges its oxide and
    writes its magnet back after a switch) plus fire_seed and table_bins."""
    base = {k: v for k, v in attrs.items() if k not in _ME_ATTRS}
    a = snn_spec.normalize(base)
    if a["neuron"] != "lif":
        raise SpecError("me_spiking_net neurons leak (the oxide's RC): neuron must be 'lif' with leak_shift >= 1")
    if a["reset"] != "hard":
        raise SpecError("me_spiking_net resets hard (the oxide is discharged after a switch): reset must be 'hard'")
    for key, (lo, hi) in _ME_ATTRS.items():
        v = attrs.get(key, _ME_DEFAULTS[key])
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SpecError(f"attribute {key!r} must be an integer in {lo}..{hi}, not {v!r}")
        a[key] = v
    return a


def base_attrs(a: dict) -> dict:
    """The spiking_net attributes of normalized me attrs."""
    return {k: v for k, v in a.items() if k not in _ME_ATTRS}


def param_shapes(a: dict, layers) -> dict[str, tuple[int, ...]]:
    shapes = snn_spec.param_shapes(layers)
    for l in layers:
        if l.spiking:
            shapes[f"{l.name}.fire_table"] = (a["table_bins"],)
            shapes[f"{l.name}.table_shift"] = (1,)
    return shapes


def check(attrs: dict, in_shapes) -> tuple[dict, tuple[int, ...], dict]:
    """`opset.check` for me_spiking_net."""
    if len(in_shapes) != 1:
        raise SpecError(f"me_spiking_net takes 1 input, got {len(in_shapes)}")
    a = normalize(attrs)
    layers = snn_spec.geometry(a, in_shapes[0])
    return a, (layers[-1].out_dims[0],), param_shapes(a, layers)


def check_values(a: dict, layers, params: dict) -> dict[str, np.ndarray]:
    """spiking_net's value checks (the int32 bound holds: a hard reset never increases |u|) plus
    the tables: integers in 0..65536, non-decreasing, shifts in 0..30."""
    base = {k: v for k, v in params.items() if not k.endswith((".fire_table", ".table_shift"))}
    out = snn_spec.check_values(base_attrs(a), layers, base)
    for l in layers:
        if not l.spiking:
            continue
        t = np.asarray(params[f"{l.name}.fire_table"], np.float64)
        s = np.asarray(params[f"{l.name}.table_shift"], np.float64)
        if t.shape != (a["table_bins"],) or s.shape != (1,):
            raise SpecError(f"{l.name}: fire_table needs shape [{a['table_bins']}] and table_shift [1]")
        if not np.array_equal(t, np.rint(t)) or t.min() < 0 or t.max() > P_ONE:
            raise SpecError(f"{l.name}.fire_table must hold integers in 0..{P_ONE} (P x 2^16)")
        if np.any(np.diff(t) < 0):
            raise SpecError(f"{l.name}.fire_table must not decrease (a higher membrane never fires less)")
        if s[0] != np.rint(s[0]) or not 0 <= s[0] <= 30:
            raise SpecError(f"{l.name}.table_shift must be an integer in 0..30, got {s[0]}")
        out[f"{l.name}.fire_table"] = np.rint(t).astype(np.int64)
        out[f"{l.name}.table_shift"] = np.rint(s).astype(np.int64)
    return out


# ---------------------------------------------------------------- device -> table
def leak_shift(dev: M.Device) -> int:
    """The k whose leak u - u/2^k is closest to the device's exp(-dt / RC) per step."""
    return max(1, int(round(-math.log2(1.0 - dev.leak_factor()))))


def table_shift(theta: int, bins: int) -> int:
    """The smallest shift whose `bins` bins cover [0, 2 theta]."""
    return max(0, math.ceil(math.log2(max(2 * theta / bins, 1.0))))


def fire_table(dev: M.Device, model: M.NeelBrown, theta: int, shift: int, bins: int,
               v_theta: float | None = None) -> np.ndarray:
    """Table entries round(65536 P) of each bin's centre, a membrane u meaning the oxide voltage
    v_theta u / theta (v_theta defaults to V_50)."""
    v_theta = model.v50(dev) if v_theta is None else v_theta
    centre = (np.arange(bins) + 0.5) * (1 << shift)
    p = model.p_step(dev, v_theta * centre / theta)
    t = np.rint(p * P_ONE)
    return np.maximum.accumulate(t).astype(np.float64)


def from_lif(attrs: dict, params: dict, in_shape, *, dev: M.Device = M.NOMINAL, model: M.NeelBrown | None = None,
             fire_seed: int = _ME_DEFAULTS["fire_seed"], bins: int = 64, v_theta: float | None = None):
    """me_spiking_net attrs and params from a LIF/hard-reset spiking_net's (same weights, thresholds
    as the V_50 reference, a fire table per spiking layer)."""
    model = M.FITTED if model is None else model
    a = normalize(dict(attrs, fire_seed=fire_seed, table_bins=bins))
    layers = snn_spec.geometry(a, in_shape)
    p = dict(params)
    for l in layers:
        if l.spiking:
            theta = int(np.rint(params[f"{l.name}.threshold"][0]))
            s = table_shift(theta, bins)
            p[f"{l.name}.fire_table"] = fire_table(dev, model, theta, s, bins, v_theta).astype(np.float32)
            p[f"{l.name}.table_shift"] = np.array([s], np.float32)
    check_values(a, layers, p)
    return a, p


# ---------------------------------------------------------------- the network loop
def _layers(attrs, in_shape):
    return snn_spec.geometry(attrs, in_shape)


def _run(a: dict, layers, p: dict, X: np.ndarray, neuron) -> tuple[list, dict, np.ndarray]:
    """The spiking_net time loop (snn.simulate's order: leak, current, fire, reset) with the
    neuron's fire rule `neuron(i, layer, u, t) -> fired` (u is updated in place by the caller's
    reset here: hard). Returns (membranes, counters, per-layer sum of u^2 over steps)."""
    n = len(X)
    x = snn.quantize_input(X.reshape((n,) + layers[0].in_dims), a["input_bits"])
    T, k = a["timesteps"], a["leak_shift"]
    first = layers[0]

    def bias(l, like):
        return p[f"{l.name}.bias"].reshape((1, -1) + (1,) * (like.ndim - 2))

    u, spikes, u2 = [], {}, {}
    for l in layers:
        theta = int(p[f"{l.name}.threshold"][0]) if l.spiking else 0
        u0 = theta // 2 if (l.spiking and a["v_init"] == "half") else 0
        shape = (n,) + (l.out_dims if l.kind == "conv" else (l.out_dims[0],))
        u.append(np.full(shape, u0, np.int64 if neuron.integer else np.float64))
        if l.spiking:
            spikes[l.name] = np.zeros(n, np.int64)
            u2[l.name] = np.zeros(n)
    synops = np.zeros(n, np.int64)
    fan = [l.fanout() for l in layers]
    if a["coding"] == "direct":
        cur0 = snn.linear(first, x, p[f"{first.name}.weight"])
        cur0 = cur0 + bias(first, cur0)
    else:
        spk_in = snn.rate_spikes(x, a)
        spikes_in = np.abs(spk_in).sum(axis=(0, 2, 3, 4))
        synops += (np.abs(spk_in) * fan[0][None, None]).sum(axis=(0, 2, 3, 4))
    for t in range(T):
        s = None
        for i, l in enumerate(layers):
            if i == 0 and a["coding"] == "direct":
                cur = cur0
            else:
                cur = snn.linear(l, spk_in[t] if i == 0 else s, p[f"{l.name}.weight"])
                cur = cur + bias(l, cur)
            if not l.spiking:
                u[i] += cur
                break
            u[i] = neuron.leak(i, u[i]) + cur
            fired = neuron.fire(i, l, u[i], t)
            u2[l.name] += (u[i].astype(np.float64) ** 2).reshape(n, -1).sum(axis=1)
            u[i][fired] = 0
            s = fired.reshape((n,) + l.out_dims).astype(np.int64)
            spikes[l.name] += s.reshape(n, -1).sum(axis=1)
            synops += (s * fan[i + 1][None]).reshape(n, -1).sum(axis=1)
    counters = {}
    for name in snn_spec.counter_names(a, layers):
        if name == "spikes_in":
            counters[name] = spikes_in
        elif name == "synops":
            counters[name] = synops
        else:
            counters[name] = spikes[name[len("spikes_"):]]
    return u, counters, u2


def fire_draws(a: dict, layers, seed: int | None = None) -> dict[int, np.ndarray]:
    """The 16-bit draws of every spiking layer, {layer index: [T, *neuron shape (C, H, W or units)]},
    from one xorshift32 stream in the C's order (step, layer, [H][W][C] or [units])."""
    sizes = [(i, l) for i, l in enumerate(layers) if l.spiking]
    per_step = sum(l.n_out for _, l in sizes)
    T = a["timesteps"]
    r = (snn.xorshift32(a["fire_seed"] if seed is None else seed, T * per_step) >> np.uint32(16)).astype(np.int64)
    r = r.reshape(T, per_step)
    out, off = {}, 0
    for i, l in sizes:
        block = r[:, off:off + l.n_out]
        off += l.n_out
        if l.kind == "conv":
            c, h, w = l.out_dims
            out[i] = block.reshape(T, h, w, c).transpose(0, 3, 1, 2)
        else:
            out[i] = block
    return out


class _TableNeuron:
    """The integer ME neuron of the operator (bit-exact with kernels_c/hk_me.h)."""

    integer = True

    def __init__(self, a, layers, p):
        self.k = a["leak_shift"]
        self.p = p
        self.draws = fire_draws(a, layers)

    def leak(self, i, u):
        return snn.leak(u, self.k)

    def fire(self, i, l, u, t):
        table = self.p[f"{l.name}.fire_table"]
        b = np.clip(u >> int(self.p[f"{l.name}.table_shift"][0]), 0, len(table) - 1)
        return self.draws[i][t][None] < table[b]


@dataclass
class SimResult:
    output: np.ndarray
    membrane: np.ndarray
    counters: dict[str, np.ndarray]
    sum_u2: dict[str, np.ndarray]      # per spiking layer: sum over neurons and steps of u^2 (leak energy)


def simulate(attrs: dict, params: dict, X, in_shape=None) -> SimResult:
    """Run an me_spiking_net node (model-file attrs and params) on the batch X [N, *in_shape]."""
    X = np.asarray(X, np.float32)
    in_shape = tuple(in_shape) if in_shape is not None else X.shape[1:]
    a = normalize(attrs)
    layers = _layers(a, in_shape)
    p = check_values(a, layers, params)
    u, counters, u2 = _run(a, layers, p, X, _TableNeuron(a, layers, p))
    mem = u[-1]
    out = mem.astype(np.int32).astype(np.float32) * p["output_scale"][0]
    return SimResult(out.astype(np.float32), mem, counters, u2)


def forward(attrs: dict, params: dict, X) -> np.ndarray:
    return simulate(attrs, params, X).output


def model_counters(model, X) -> dict[str, np.ndarray]:
    """Reference counters of every me_spiking_net node, named as in the firmware's manifest."""
    from .modelfile import LoadedModel, load
    from .reference import forward_trace

    if not isinstance(model, LoadedModel):
        model = load(model)
    nodes = [la for la in model.layers if la["op"] == "me_spiking_net"]
    if not nodes:
        return {}
    trace = forward_trace(model, X)
    out = {}
    for la in nodes:
        res = simulate(la["attrs"], model.params(la), trace[la["inputs"][0]], model.shapes[la["inputs"][0]])
        out.update({f"{la['name']}.{k}": v for k, v in res.counters.items()})
    return out


# ---------------------------------------------------------------- float device-level network
class _DeviceNeuron:
    """Float membranes (charge) with per-neuron devices: V = v_theta (u / theta) (C_nom / C_i),
    leak exp(-dt / (R C_i)), and the fitted model with the magnet's lag: within a step the field
    h_eff relaxes towards h(V) (tau_m of NeelBrown, `substeps` exact exponential sub-steps) and the
    neuron fires with P = 1 - exp(-sum r(h_eff) dt/substeps), drawn from a numpy Generator; a
    neuron that fires has its magnet written back (h_eff = 0). lag=False: quasi-static P = p_step(V),
    what the integer tables use."""

    integer = False

    def __init__(self, a, layers, p, dev, model, rng, spread, v_theta, corner, lag, substeps=8):
        self.dev, self.model, self.rng, self.p = dev, model, rng, p
        self.lag, self.substeps = lag, substeps
        self.v_theta = model.v50(dev) if v_theta is None else v_theta
        self.c_rel, self.delta, self.keep, self.h_eff = {}, {}, {}, {}
        for i, l in enumerate(layers):
            if not l.spiking:
                continue
            shape = l.out_dims if l.kind == "conv" else (l.out_dims[0],)
            d_rel = corner.get("delta0", 1.0) * (1 + spread.get("delta0", 0.0) * rng.uniform(-1, 1, shape))
            c_rel = corner.get("c_ox", 1.0) * (1 + spread.get("c_ox", 0.0) * rng.uniform(-1, 1, shape))
            self.delta[i] = dev.delta0 * d_rel
            self.c_rel[i] = c_rel
            self.keep[i] = np.exp(-dev.dt_step / (dev.tau_rc * c_rel))

    def leak(self, i, u):
        return u * self.keep[i]

    def fire(self, i, l, u, t):
        theta = float(self.p[f"{l.name}.threshold"][0])
        v = self.v_theta * u / theta / self.c_rel[i]
        if not self.lag:
            return self.rng.random(u.shape) < self.model.p_step(self.dev, v, delta0=self.delta[i])
        h = self.dev.h(v)
        he = self.h_eff.get(i)
        he = np.zeros_like(h) if he is None else he
        dt = self.dev.dt_step / self.substeps
        acc = np.zeros_like(h)
        for _ in range(self.substeps):
            a = np.exp(-dt / self.model.tau_m(self.dev, he))
            he = a * he + (1 - a) * h
            acc += self.model.rate(he, self.delta[i]) * dt
        fired = self.rng.random(u.shape) < -np.expm1(-acc)
        he[fired] = 0.0
        self.h_eff[i] = he
        return fired


class _ThresholdNeuron:
    """Deterministic LIF with the same float leak (the baseline of the device-level runs)."""

    integer = False

    def __init__(self, a, layers, p, dev):
        self.p, self.keep = p, np.exp(-dev.dt_step / dev.tau_rc)

    def leak(self, i, u):
        return u * self.keep

    def fire(self, i, l, u, t):
        return u >= float(self.p[f"{l.name}.threshold"][0])


def simulate_device(attrs: dict, params: dict, X, *, dev: M.Device = M.NOMINAL, model: M.NeelBrown | None = None,
                    rng: np.random.Generator | None = None, spread: dict | None = None, corner: dict | None = None,
                    deterministic: bool = False, v_theta: float | None = None, lag: bool = True) -> SimResult:
    """The network of an me_spiking_net node with float device-level neurons.

    spread  per-neuron uniform variation, e.g. {"delta0": 0.1, "c_ox": 0.1} = +/-10 % (drawn once
            per neuron from rng, like one fabricated chip)
    corner  a global scale of every neuron, e.g. {"delta0": 0.9}
    deterministic  fire at u >= threshold instead (the LIF baseline with the same float leak)
    lag     the magnet's lag behind the field within and across steps (the full fitted model); False:
            the quasi-static per-step probability of the integer tables."""
    X = np.asarray(X, np.float32)
    a = normalize(attrs)
    layers = _layers(a, X.shape[1:])
    p = check_values(a, layers, params)
    model = M.FITTED if model is None else model
    rng = np.random.default_rng(0) if rng is None else rng
    neuron = (_ThresholdNeuron(a, layers, p, dev) if deterministic
              else _DeviceNeuron(a, layers, p, dev, model, rng, spread or {}, v_theta, corner or {}, lag))
    u, counters, u2 = _run(a, layers, p, X, neuron)
    out = (u[-1] * float(p["output_scale"][0])).astype(np.float32)
    return SimResult(out, u[-1], counters, u2)


# ---------------------------------------------------------------- the recipe
TIMESTEPS = 32
SPLIT = "train_test_split(test_size=0.2, stratify=y, random_state=0)"


def build(seed: int = 0, *, timesteps: int = TIMESTEPS, dev: M.Device = M.NOMINAL, epochs: int | None = None,
          progress=None, bins: int = 64):
    """Train the ANN (digits-cnn with average pooling), convert it to a LIF/hard-reset spiking_net
    with the device's leak, and derive the ME tables. Returns (lif (attrs, params), me (attrs,
    params), info)."""
    from threadpoolctl import threadpool_limits

    from .snn_convert import convert, quantize
    from .snn_recipes import ANN_EPOCHS, digits_data, train_ann

    X_train, _, _, _ = digits_data("cnn")
    with threadpool_limits(1, user_api="blas"):
        ann, ann_acc = train_ann("cnn", seed, ANN_EPOCHS if epochs is None else int(epochs), progress)
    fsnn = convert(ann, X_train, (1, 8, 8))
    k = leak_shift(dev)
    lif = quantize(fsnn, timesteps=timesteps, reset="hard", v_init="zero", neuron="lif", leak_shift=k)
    me = from_lif(*lif, (1, 8, 8), dev=dev, bins=bins)
    return lif, me, {"ann_test_accuracy": ann_acc, "leak_shift": k,
                     "lambdas": {kk: round(v, 6) for kk, v in fsnn.lambdas.items()}}


def recipe(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """digits-snn-me: the converted digits CNN with ME-LIF neurons (graph: me_spiking_net -> softmax)."""
    from . import modelfile
    from .network import GraphBuilder
    from .snn_recipes import digits_data

    t0 = time.perf_counter()
    (lif_a, lif_p), (me_a, me_p), info = build(seed, epochs=epochs, progress=progress)
    _, _, X_test, y_test = digits_data("cnn")
    lif_acc = float((snn.simulate(lif_a, lif_p, X_test).output.argmax(1) == y_test).mean())
    dev, model = M.NOMINAL, M.FITTED
    meta = {"recipe": "digits-snn-me", "classes": 10, "dataset": "sklearn-digits", "split": SPLIT, "seed": int(seed),
            "epochs": epochs or 60, "timesteps": me_a["timesteps"],
            "ann": {"arch": "digits-cnn with average pooling", "test_accuracy": round(info["ann_test_accuracy"], 6)},
            "neuron": {"kind": "ME-LIF (docs/me-neuron.md)", "leak_shift": info["leak_shift"],
                       "device": M.describe(dev, model)},
            "lif_test_accuracy": round(lif_acc, 6)}
    b = GraphBuilder((1, 8, 8))
    out = b.add("me_spiking_net", [b.input_name], me_a, me_p, name="snn")
    out = b.add("softmax", [out], name="softmax")
    graph, arrays = b.graph(name="digits-snn-me", output=out, meta=meta)
    loaded = modelfile.validate(graph, arrays)
    node = loaded.layers[0]
    res = simulate(node["attrs"], loaded.params(node), X_test)   # what reference.forward runs (softmax keeps argmax)
    acc = float((res.output.argmax(1) == y_test).mean())
    spikes = float(sum(v.mean() for kk, v in res.counters.items() if kk.startswith("spikes_l")))
    graph["meta"].update({"test_accuracy": round(acc, 6), "spikes_per_inference": round(spikes, 3),
                          "synops_per_inference": round(float(res.counters["synops"].mean()), 3)})
    saved = modelfile.save(out_path, graph, arrays)
    return {"recipe": "digits-snn-me", "path": str(out_path), "hash": saved.hash, "test_accuracy": acc,
            "lif_test_accuracy": lif_acc, "ann_test_accuracy": info["ann_test_accuracy"],
            "test_samples": int(len(y_test)), "train_seconds": round(time.perf_counter() - t0, 3),
            "epochs": epochs or 60, "seed": int(seed), "params": int(sum(v.size for v in arrays.values())),
            "timesteps": me_a["timesteps"], "spikes_per_inference": spikes}
