"""A random recurrent spiking reservoir with an integer readout: the reference of the `lsm_policy` op.

The reservoir paper (Ponghiran, Srinivasan and Roy, Frontiers in Neuroscience 2019; docs/references.md)
drives a small random recurrent network of leaky integrate-and-fire neurons with a Poisson coding
of the observation for 100 ms per environment step and trains only a readout on the excitatory
neurons' firing rates with Q-learning. This module is that network in the fixed-point arithmetic
the board runs (kernels_c/hk_lsm.h), vectorised over a batch of independent environments:

- observation: q_j = round(clamp(x_j * gain_j, +-2^input_bits)) (one float32 multiply, then
  integers); at each of `timesteps` steps, one xorshift32 draw r per observation (r >> (32 -
  input_bits)) makes a spike on channel 2j (x_j > 0) or 2j + 1 (x_j < 0) when r < |q_j|;
- neurons: int32 membranes, u <- u - floor(u / 2^leak_shift) + I; a spike when u >= threshold,
  then u <- 0 (hard reset, as in the paper). I is the sum of the input weights of this step's
  input spikes and of the recurrent weights of the neurons that fired on the step before;
- state: membranes, last spikes and the random stream persist from one control step to the next;
  a control step whose reset flag (the last input) is not 0 starts from the reset state (u = 0, no
  spikes, the stream back at `seed`), as at the start of an episode;
- readout: c = spike counts of the excitatory neurons in the control step (0..timesteps);
  h = max(0, W1 c + b1) (int32), acc = W2 h + b2 (int64, b2 too); the action is the first argmax of acc,
  the outputs are (acc >> out_shift) * out_scale in float32 (exact: |acc >> out_shift| < 2^24).

Every sum stays far inside int32/int64 (`check_values` proves the bounds from the weights), and
the float32 products it evaluates the integer matmuls with are exact (< 2^24), so the board's
actions and counters equal this reference bit for bit, and its Q-values too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# attribute: (default, lo, hi); None: required
ATTRS = {
    "neurons": (None, 2, 4096),
    "excitatory": (None, 1, 4096),
    "timesteps": (100, 1, 1000),
    "leak_shift": (4, 1, 16),
    "input_bits": (8, 1, 15),
    "seed": (1, 1, 2 ** 32 - 1),
    "hidden": (None, 1, 1024),
    "actions": (None, 2, 64),
    "out_shift": (0, 0, 40),
}
PARAMS = ("gain", "threshold", "w_in", "w_rec", "w1", "b1", "w2", "b2", "out_scale")
COUNTERS = ("action", "spikes_in", "spikes_exc", "spikes_inh", "synops")
WEIGHT_MAX = 2 ** 15 - 1      # int16 synapses and readout weights
BIAS_MAX = 2 ** 30            # b1: integers (a float32 this large is one), int32 in the C
B2_MAX = 2 ** 53              # b2: int64 in the C (the readout's output unit is tiny)
INT32_MAX = 2 ** 31 - 1
INT64_MAX = 2 ** 63 - 1


class LSMError(ValueError):
    """An lsm_policy's attributes or parameters are out of range."""


@dataclass(frozen=True)
class Spec:
    n_obs: int
    neurons: int
    excitatory: int
    timesteps: int
    leak_shift: int
    input_bits: int
    seed: int
    hidden: int
    actions: int
    out_shift: int

    @property
    def channels(self) -> int:
        return 2 * self.n_obs

    @property
    def draws_per_step(self) -> int:
        """xorshift32 draws per control step: one per observation per time step."""
        return self.timesteps * self.n_obs


def normalize(attrs: dict) -> dict:
    """Type-check the attributes and fill in defaults (unknown names are errors)."""
    known = set(ATTRS) | {"exp"}
    unknown = sorted(set(attrs) - known)
    if unknown:
        raise LSMError(f"unknown attribute {unknown[0]!r} for lsm_policy (known: {', '.join(sorted(known))})")
    out = {}
    for key, (default, lo, hi) in ATTRS.items():
        v = attrs.get(key, default)
        if v is None:
            raise LSMError(f"lsm_policy needs attribute {key!r}")
        if isinstance(v, bool) or not isinstance(v, int):
            raise LSMError(f"attribute {key!r} must be an integer, not {v!r}")
        if not lo <= v <= hi:
            raise LSMError(f"attribute {key!r} must be in {lo}..{hi}, not {v}")
        out[key] = v
    if out["excitatory"] > out["neurons"]:
        raise LSMError(f"excitatory ({out['excitatory']}) cannot exceed neurons ({out['neurons']})")
    if "exp" in attrs:
        out["exp"] = attrs["exp"]
    return out


def spec_of(attrs: dict, in_shape) -> Spec:
    a = normalize(attrs)
    in_shape = tuple(int(d) for d in in_shape)
    if len(in_shape) != 1 or in_shape[0] < 2:
        raise LSMError(f"lsm_policy needs a 1-D input [observation..., reset], got {list(in_shape)}")
    if in_shape[0] - 1 > 64:
        raise LSMError(f"lsm_policy takes at most 64 observations, got {in_shape[0] - 1}")
    return Spec(n_obs=in_shape[0] - 1, **{k: a[k] for k in ATTRS})


def param_shapes(s: Spec) -> dict[str, tuple[int, ...]]:
    return {"gain": (s.n_obs,), "threshold": (1,), "w_in": (s.neurons, s.channels),
            "w_rec": (s.neurons, s.neurons), "w1": (s.hidden, s.excitatory), "b1": (s.hidden,),
            "w2": (s.actions, s.hidden), "b2": (s.actions,), "out_scale": (1,)}


def check(attrs: dict, in_shapes) -> tuple[dict, tuple[int, ...], dict]:
    """`opset.check` for lsm_policy: (normalized attrs, output shape, {param role: shape})."""
    if len(in_shapes) != 1:
        raise LSMError(f"lsm_policy takes 1 input, got {len(in_shapes)}")
    s = spec_of(attrs, in_shapes[0])
    return normalize(attrs), (s.actions,), param_shapes(s)


# ---------------------------------------------------------------- value bounds
def _ints(key: str, a, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(a)
    if not np.all(np.isfinite(a)) or not np.array_equal(a, np.rint(a)):
        raise LSMError(f"{key} must hold integers (the reservoir and readout run in fixed point)")
    if a.size and (a.min() < lo or a.max() > hi):
        raise LSMError(f"{key} must be within [{lo}, {hi}], got [{a.min():.0f}, {a.max():.0f}]")
    return np.rint(a).astype(np.int64)


def bounds(s: Spec, p: dict) -> dict[str, int]:
    """Largest magnitudes the C can meet (exact integers): one step's input current, a membrane,
    the readout's hidden sums and its int64 accumulator."""
    cur = np.abs(p["w_in"]).sum(axis=1) + np.abs(p["w_rec"]).sum(axis=1)
    current = int(cur.max(initial=0))
    # |u| never grows past max(threshold, 2^k (current + 1)): the leak takes at least
    # |u| / 2^k - 1 off a membrane and a step adds at most `current`.
    membrane = max(int(p["threshold"][0]), (current + 1) << s.leak_shift) + current
    hid = np.abs(p["b1"]) + s.timesteps * np.abs(p["w1"]).sum(axis=1)
    hidden = int(hid.max(initial=0))
    acc = int(np.abs(p["b2"]).max(initial=0)) + int(np.abs(p["w2"]).sum(axis=1).max(initial=0)) * hidden
    return {"current": current, "membrane": membrane, "hidden": hidden, "accumulator": acc}


def check_values(attrs: dict, in_shape, params: dict) -> tuple[Spec, dict]:
    """Check that the parameters are integers in range and that no int32 membrane, hidden sum or
    int64 accumulator can overflow; return (spec, params as int64, gain/out_scale as float32)."""
    s = spec_of(attrs, in_shape)
    out: dict[str, np.ndarray] = {}
    for key, shape in param_shapes(s).items():
        a = np.asarray(params[key])
        if a.shape != shape:
            raise LSMError(f"{key} has shape {list(a.shape)}, needs {list(shape)}")
        if key in ("gain", "out_scale"):
            f = a.astype(np.float32)
            if not np.all(np.isfinite(f)) or (key == "out_scale" and not f[0] > 0):
                raise LSMError(f"{key} must be finite{' and positive' if key == 'out_scale' else ''}")
            out[key] = f
        elif key == "threshold":
            out[key] = _ints(key, a, 1, 2 ** 30)
        elif key.startswith("b"):
            lim = B2_MAX if key == "b2" else BIAS_MAX
            out[key] = _ints(key, a, -lim, lim)
        else:
            out[key] = _ints(key, a, -WEIGHT_MAX, WEIGHT_MAX)
    b = bounds(s, out)
    if b["membrane"] > INT32_MAX:
        raise LSMError(f"membranes could overflow int32 (bound {b['membrane']}): use smaller weights")
    if b["hidden"] > INT32_MAX:
        raise LSMError(f"the readout's hidden sums could overflow int32 (bound {b['hidden']})")
    if b["accumulator"] > INT64_MAX // 2:
        raise LSMError(f"the readout accumulator could overflow int64 (bound {b['accumulator']})")
    if (b["accumulator"] >> s.out_shift) >= 2 ** 24:
        raise LSMError(f"out_shift {s.out_shift} leaves outputs of up to {b['accumulator'] >> s.out_shift}, "
                       "not exact in float32 (< 2^24): raise out_shift")
    nnz = int((out["w_rec"] != 0).sum() + (out["w_in"] != 0).sum())
    if s.timesteps * nnz > 2 ** 32 - 1:
        raise LSMError("the synaptic-operation counter could overflow u32: fewer time steps or synapses")
    return s, out


# ---------------------------------------------------------------- input coding
def quantize_obs(x, gain, input_bits: int) -> np.ndarray:
    """q = round half away from zero of clamp(x * gain, +-2^bits), as the C computes it: one float32
    multiply, comparisons, an exact doubling and a truncation; the rounding itself in integers
    (no float add that an FMA could fuse). NaN (never sent: the firmware refuses it) gives -2^bits."""
    m = np.float32(2 ** input_bits)
    v = np.asarray(x, np.float32) * np.asarray(gain, np.float32)
    v = np.where(np.isnan(v), -m, np.clip(v, -m, m)).astype(np.float32)
    t = np.trunc(v * np.float32(2)).astype(np.int64)
    return np.where(t >= 0, (t + 1) >> 1, -((1 - t) >> 1))


class NoiseStream:
    """The xorshift32 stream from `seed`, as r = x >> (32 - bits), laid out [control step, time step,
    observation] counted from a reset (every episode sees the same stream, as the board does)."""

    def __init__(self, s: Spec, steps: int = 512):
        self.spec = s
        self._r = np.zeros((0, s.timesteps, s.n_obs), np.int64)
        self._state = s.seed
        self._extend(steps)

    def _extend(self, steps: int) -> None:
        from .snn import xorshift32  # the spiking layers' generator: the same stream as hk_snn.h
        s = self.spec
        n = steps * s.draws_per_step
        raw = xorshift32(self._state, n)
        self._state = int(raw[-1])
        r = (raw >> np.uint32(32 - s.input_bits)).astype(np.int64).reshape(steps, s.timesteps, s.n_obs)
        self._r = np.concatenate([self._r, r])

    def __getitem__(self, pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, np.int64)
        need = int(pos.max(initial=0)) + 1
        while need > len(self._r):
            self._extend(len(self._r))
        return self._r[pos]


# ---------------------------------------------------------------- the reservoir
class State:
    """Reservoir state of a batch of independent environments (the board's persistent state)."""

    def __init__(self, s: Spec, batch: int):
        self.u = np.zeros((batch, s.neurons), np.int64)
        self.fired = np.zeros((batch, s.neurons), bool)
        self.pos = np.zeros(batch, np.int64)          # control steps since the last reset

    def reset(self, mask=None) -> None:
        mask = np.ones(len(self.pos), bool) if mask is None else np.asarray(mask, bool)
        self.u[mask] = 0
        self.fired[mask] = False
        self.pos[mask] = 0


class Reservoir:
    """The integer network of one lsm_policy node (spec + checked params)."""

    def __init__(self, s: Spec, p: dict):
        self.spec, self.p = s, p
        self.noise = NoiseStream(s)
        # The currents are integer sums: float32 matmuls are exact while they stay below 2^24.
        self.dtype = np.float32 if bounds(s, p)["current"] < 2 ** 24 else np.float64
        self.w_in_t = p["w_in"].T.astype(self.dtype)
        self.w_rec_t = p["w_rec"].T.astype(self.dtype)
        self.fan_in = (p["w_in"] != 0).sum(axis=0)         # synapses a spike of each channel drives
        self.fan_rec = (p["w_rec"] != 0).sum(axis=0)
        self.threshold = int(p["threshold"][0])

    @classmethod
    def from_node(cls, attrs: dict, in_shape, params: dict) -> "Reservoir":
        try:
            s, p = check_values(attrs, in_shape, params)
        except KeyError as e:
            raise LSMError(f"lsm_policy is missing parameter {e.args[0]!r}") from None
        return cls(s, p)

    def state(self, batch: int) -> State:
        return State(self.spec, batch)

    def step(self, state: State, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One control step of every environment: returns the excitatory spike counts [B, NE]
        and the reservoir counters (spikes_in, spikes_exc, spikes_inh, synops) [B]. Advances state."""
        s, p = self.spec, self.p
        obs = np.asarray(obs, np.float32).reshape(len(state.pos), s.n_obs)
        q = quantize_obs(obs, p["gain"], s.input_bits)[:, None, :]          # [B, 1, n_obs]
        r = self.noise[state.pos]                                            # [B, T, n_obs]
        chan = np.stack([(q > 0) & (r < q), (q < 0) & (r < -q)], axis=-1)    # channel 2j: +, 2j+1: -
        chan = chan.reshape(len(q), s.timesteps, s.channels).astype(self.dtype)
        cur_in = chan @ self.w_in_t                                          # [B, T, N]
        synops = np.rint(chan @ self.fan_in.astype(self.dtype)).sum(axis=1).astype(np.int64)
        u, fired = state.u, state.fired
        counts = np.zeros(u.shape, np.int64)
        fan_rec = self.fan_rec.astype(self.dtype)
        for t in range(s.timesteps):
            f = fired.astype(self.dtype)
            synops += np.rint(f @ fan_rec).astype(np.int64)
            cur = np.rint(cur_in[:, t] + f @ self.w_rec_t).astype(np.int64)
            u = u - (u >> s.leak_shift) + cur                                # numpy >> is a floor
            fired = u >= self.threshold
            u = np.where(fired, 0, u)
            counts += fired
        state.u, state.fired = u, fired
        state.pos += 1
        ne = s.excitatory
        counters = {"spikes_in": chan.sum(axis=(1, 2)).astype(np.int64),
                    "spikes_exc": counts[:, :ne].sum(axis=1), "spikes_inh": counts[:, ne:].sum(axis=1),
                    "synops": synops}
        return counts[:, :ne], counters

    def readout(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer readout of excitatory counts [B, NE]: (actions [B], float32 outputs [B, A])."""
        s, p = self.spec, self.p
        h = np.maximum(counts @ p["w1"].T + p["b1"], 0)                     # int64, < 2^31
        acc = h @ p["w2"].T + p["b2"]                                         # int64
        action = acc.argmax(axis=1)
        out = (acc >> s.out_shift).astype(np.float32) * p["out_scale"][0]
        return action, out.astype(np.float32)

    def policy_step(self, state: State, obs: np.ndarray, reset=None):
        """The board's STEP for a batch: reset where asked, run the reservoir, read out.
        Returns (actions [B], outputs [B, A], counters {name: [B]} in COUNTERS order)."""
        if reset is not None:
            state.reset(np.asarray(reset, bool))
        counts, c = self.step(state, obs)
        action, out = self.readout(counts)
        return action, out, {"action": action.astype(np.int64), **c}


def simulate(attrs: dict, params: dict, X, in_shape=None):
    """Run an lsm_policy node on the sequence X [S, n_obs + 1] (one control step a row, the last
    column the reset flag), from the reset state: (outputs [S, A], counters {name: [S]})."""
    X = np.asarray(X, np.float32).reshape(len(X), -1)
    res = Reservoir.from_node(attrs, in_shape if in_shape is not None else X.shape[1:], params)
    st = res.state(1)
    outs, counters = [], {k: [] for k in COUNTERS}
    for row in X:
        _, out, c = res.policy_step(st, row[None, :-1], reset=[row[-1] != 0])
        outs.append(out[0])
        for k in COUNTERS:
            counters[k].append(int(c[k][0]))
    return (np.stack(outs).astype(np.float32) if outs else np.zeros((0, res.spec.actions), np.float32),
            {k: np.asarray(v, np.int64) for k, v in counters.items()})


def forward(attrs: dict, params: dict, X) -> np.ndarray:
    """What `reference.forward` runs: the batch is a sequence of control steps (state carries over)."""
    return simulate(attrs, params, X)[0]


# ---------------------------------------------------------------- building a reservoir
@dataclass(frozen=True)
class ReservoirConfig:
    """The random network (weights in units of the threshold; the paper: 150 neurons, 80 % of them
    excitatory, sparse recurrence with an in-degree of ~3-4, Poisson input, 100 ms of 1 ms steps
    per environment step, tau 20 ms: here 2^4 = 16 ms, the leak being a shift)."""

    neurons: int = 150
    excitatory: int = 120
    timesteps: int = 100
    leak_shift: int = 4
    input_bits: int = 8
    threshold: int = 4096          # membrane units per threshold: the weights' resolution
    in_density: float = 0.25       # fraction of the neurons each input channel reaches
    in_weight: tuple[float, float] = (0.3, 1.0)
    in_degree: int = 4             # recurrent synapses onto each neuron
    w_exc: float = 0.5             # recurrent weights: +U(0.5, 1) w_exc from excitatory neurons,
    w_inh: float = 1.0             # -U(0.5, 1) w_inh from inhibitory ones
    seed: int = 1                  # the input stream's xorshift32 seed (not the construction's)


def random_reservoir(rng: np.random.Generator, n_obs: int, cfg: ReservoirConfig = ReservoirConfig()) -> dict:
    """Integer reservoir parameters (threshold, w_in [N, 2 n_obs], w_rec [N, N]) drawn from rng."""
    n, th = cfg.neurons, cfg.threshold
    w_in = np.zeros((n, 2 * n_obs))
    mask = rng.random(w_in.shape) < cfg.in_density
    w_in[mask] = rng.uniform(*cfg.in_weight, int(mask.sum())) * th
    w_rec = np.zeros((n, n))
    for post in range(n):
        pre = rng.choice(np.delete(np.arange(n), post), cfg.in_degree, replace=False)
        mag = rng.uniform(0.5, 1.0, cfg.in_degree)
        w_rec[post, pre] = np.where(pre < cfg.excitatory, mag * cfg.w_exc, -mag * cfg.w_inh) * th
    return {"threshold": np.array([th], np.float32), "w_in": np.rint(w_in).astype(np.float32),
            "w_rec": np.rint(w_rec).astype(np.float32)}


def quantize_readout(w1, b1, w2, b2, timesteps: int) -> tuple[dict, int]:
    """Integer readout params from a float readout on rates (counts / timesteps):
    h = relu(w1 r + b1), y = w2 h + b2. Returns ({w1, b1, w2, b2, out_scale}, out_shift).

    w1 / timesteps and w2 take the whole int16 range (unless the int32 hidden sums need a
    coarser scale); the biases follow the scales; out_shift brings the int64 accumulator below
    2^24 so that its conversion to float32 is exact."""
    w1, b1, w2, b2 = (np.asarray(v, np.float64) for v in (w1, b1, w2, b2))
    a = w1 / timesteps
    s1 = max(np.abs(a).max() / WEIGHT_MAX, np.abs(b1).max() / BIAS_MAX,
             (timesteps * np.abs(a).sum(axis=1) + np.abs(b1)).max() / (INT32_MAX - 2 * a.shape[1]), 1e-30)
    w1q, b1q = np.rint(a / s1), np.rint(b1 / s1)
    s2 = max(np.abs(w2).max() / WEIGHT_MAX, 1e-30)
    w2q = np.rint(w2 / s2)
    b2q = np.clip(np.rint(b2 / (s1 * s2)), -B2_MAX, B2_MAX)
    # a float32 this large is an integer, but maybe not this one: store what float32 holds
    b1q, b2q = b1q.astype(np.float32).astype(np.float64), b2q.astype(np.float32).astype(np.float64)
    hidden = (np.abs(b1q) + timesteps * np.abs(w1q).sum(axis=1)).max()
    acc = np.abs(b2q).max() + np.abs(w2q).sum(axis=1).max() * hidden
    out_shift = max(0, int(acc).bit_length() - 23)
    scale = np.float32(s1 * s2 * 2.0 ** out_shift)
    return ({"w1": w1q.astype(np.float32), "b1": b1q.astype(np.float32), "w2": w2q.astype(np.float32),
             "b2": b2q.astype(np.float32), "out_scale": np.array([scale], np.float32)}, out_shift)


def build_graph(n_obs: int, res_params: dict, gain, readout: dict, out_shift: int, *, cfg: ReservoirConfig,
                name: str, meta: dict | None = None) -> tuple[dict, dict]:
    """The model-file graph of one lsm_policy node (input [observation..., reset flag])."""
    hidden, ne = readout["w1"].shape
    attrs = {"neurons": cfg.neurons, "excitatory": cfg.excitatory, "timesteps": cfg.timesteps,
             "leak_shift": cfg.leak_shift, "input_bits": cfg.input_bits, "seed": cfg.seed,
             "hidden": int(hidden), "actions": int(readout["w2"].shape[0]), "out_shift": int(out_shift)}
    params = {"gain": np.asarray(gain, np.float32), **res_params, **readout}
    arrays = {f"policy.{k}": np.asarray(v, np.float32) for k, v in params.items()}
    graph = {"format": "hilkit-model", "version": 1, "name": name,
             "input": {"name": "input", "shape": [n_obs + 1]},
             "layers": [{"name": "policy", "op": "lsm_policy", "inputs": ["input"], "attrs": attrs,
                         "params": {k: f"policy.{k}" for k in params}}],
             "output": "policy", "meta": dict(meta or {})}
    return graph, arrays


def model_counters(model, X) -> dict[str, np.ndarray]:
    """Reference counters of the lsm_policy nodes of a loaded model for the sequence X, named as
    in the firmware's manifest (`<node>.<counter>`)."""
    from .modelfile import LoadedModel, load
    from .reference import forward_trace

    if not isinstance(model, LoadedModel):
        model = load(model)
    out = {}
    layers = [layer for layer in model.layers if layer["op"] == "lsm_policy"]
    if layers:
        trace = forward_trace(model, X)
        for layer in layers:
            x = trace[layer["inputs"][0]]
            _, c = simulate(layer["attrs"], model.params(layer), x, model.shapes[layer["inputs"][0]])
            out.update({f"{layer['name']}.{k}": v for k, v in c.items()})
    return out
