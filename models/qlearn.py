"""Deep Q-learning of a readout on a fixed spiking reservoir (numpy; the reservoir paper's method).

Only the readout learns: a small MLP (excitatory firing rates -> hidden ReLU -> one Q-value per
action) trained with a replay buffer, a target network, an epsilon-greedy schedule, the double-DQN
target and the Huber loss. The reservoir (`reservoir.Reservoir`) is the integer network the board
runs, so the features the readout learns from are exactly the ones it sees on the board.

Environments run as a batch of independent gymnasium `CartPole-v1` instances, each with its own
reservoir state; a transition stores the features before and after the step, so learning never
re-runs the reservoir.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .layers import Dense, ReLU
from .network import Sequential
from .optim import Adam
from .reservoir import Reservoir, State


@dataclass
class DQNConfig:
    """Hyper-parameters of `train` (defaults: the cartpole-lsm recipe)."""

    env_steps: int = 100_000         # environment steps at most (over the batch of environments)
    n_envs: int = 32                 # environments stepped together
    hidden: int = 32                 # readout hidden units (the paper: 32)
    gamma: float = 0.99
    lr: float = 1e-3
    lr_final: float = 1e-4           # linear decay of the learning rate over training
    batch_size: int = 128
    replay: int = 100_000
    learn_start: int = 2_000         # transitions in the buffer before learning starts
    updates_per_step: int = 16       # gradient steps per batch of environment steps
    target_every: int = 500          # gradient steps between target-network copies
    eps_start: float = 1.0
    eps_end: float = 0.02
    eps_steps: int = 20_000          # environment steps of the linear epsilon decay
    huber: float = 1.0
    n_step: int = 3                  # n-step returns: reward reaches back n steps per update
    eval_every: int = 5_000          # environment steps between greedy evaluations
    stop_at: float | None = 500.0    # stop early once an evaluation's mean return reaches this
    seed: int = 0


@dataclass
class Transitions:
    """A ring buffer of (features, action, n-step return, features n steps later, terminal,
    discount gamma^n of the bootstrap)."""

    capacity: int
    dim: int
    f: np.ndarray = field(init=False)
    a: np.ndarray = field(init=False)
    r: np.ndarray = field(init=False)
    f2: np.ndarray = field(init=False)
    done: np.ndarray = field(init=False)
    disc: np.ndarray = field(init=False)
    n: int = 0
    head: int = 0

    def __post_init__(self):
        self.f = np.zeros((self.capacity, self.dim), np.float32)
        self.f2 = np.zeros((self.capacity, self.dim), np.float32)
        self.a = np.zeros(self.capacity, np.int64)
        self.r = np.zeros(self.capacity, np.float32)
        self.done = np.zeros(self.capacity, np.float32)
        self.disc = np.zeros(self.capacity, np.float32)

    def add(self, f, a, r, f2, done, disc) -> None:
        idx = (self.head + np.arange(len(a))) % self.capacity
        self.f[idx], self.a[idx], self.r[idx], self.f2[idx], self.done[idx] = f, a, r, f2, done
        self.disc[idx] = disc
        self.head = int((self.head + len(a)) % self.capacity)
        self.n = min(self.n + len(a), self.capacity)

    def sample(self, rng: np.random.Generator, k: int):
        i = rng.integers(0, self.n, k)
        return self.f[i], self.a[i], self.r[i], self.f2[i], self.done[i], self.disc[i]


class NStep:
    """Turns each environment's 1-step transitions into n-step ones (the return of the next n
    rewards, bootstrapped from the features n steps on; shorter at the end of an episode)."""

    def __init__(self, n_envs: int, n: int, gamma: float):
        self.n, self.gamma = n, gamma
        self.pending: list[list] = [[] for _ in range(n_envs)]

    def push(self, f, a, r, f2, term, trunc) -> list[tuple]:
        """One step of every environment; returns the finished n-step transitions. A truncated
        episode's last transitions are dropped: their bootstrap state is not known."""
        out = []
        for i, pend in enumerate(self.pending):
            pend.append((f[i], a[i], r[i]))
            if term[i] or trunc[i]:
                while pend and term[i]:
                    out.append(self._emit(pend, f2[i], 1.0))
                    pend.pop(0)
                pend.clear()
            elif len(pend) == self.n:
                out.append(self._emit(pend, f2[i], 0.0))
                pend.pop(0)
        return out

    def _emit(self, pend, f2, done):
        ret = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(pend))
        return pend[0][0], pend[0][1], ret, f2, done, self.gamma ** len(pend)


def readout_net(n_in: int, hidden: int, actions: int, rng: np.random.Generator) -> Sequential:
    """Excitatory firing rates -> dense hidden -> ReLU -> dense Q-values."""
    return Sequential([Dense(n_in, hidden, rng), ReLU(), Dense(hidden, actions, rng)])


def copy_params(src: Sequential, dst: Sequential) -> None:
    for (ms, k), (md, _) in zip(src.parameters(), dst.parameters()):
        md.params[k] = ms.params[k].copy()


def dqn_update(online: Sequential, target: Sequential, opt: Adam, batch, huber: float) -> float:
    """One double-DQN gradient step on a minibatch; returns the mean Huber loss."""
    f, a, r, f2, done, disc = batch
    best = online.forward(f2).argmax(axis=1)                       # the online net picks ...
    q_next = target.forward(f2)[np.arange(len(a)), best]          # ... the target net values it
    y = r + disc * (1.0 - done) * q_next
    q = online.forward(f, train=True)
    err = q[np.arange(len(a)), a] - y
    dq = np.zeros_like(q)
    dq[np.arange(len(a)), a] = np.clip(err, -huber, huber) / len(a)
    online.backward(dq.astype(np.float32))
    opt.step()
    ab = np.abs(err)
    return float(np.where(ab <= huber, 0.5 * err * err, huber * (ab - 0.5 * huber)).mean())


class EnvBatch:
    """n independent CartPole-v1 environments with their reservoir states."""

    def __init__(self, res: Reservoir, n: int, seeds, env_id: str = "CartPole-v1"):
        import gymnasium as gym
        self.envs = [gym.make(env_id) for _ in range(n)]
        self.res = res
        self.state: State = res.state(n)
        self.obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(self.envs, seeds)]).astype(np.float32)
        self.returns = np.zeros(n)

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the reservoir on the current observations: (counts [n, NE], rates [n, NE] float32)."""
        counts, _ = self.res.step(self.state, self.obs)
        return counts, (counts / self.res.spec.timesteps).astype(np.float32)

    def step(self, actions):
        """Step every environment; finished ones restart (the caller resets their reservoirs).
        Returns (rewards, terminal flags, returns of the episodes that ended, ended mask)."""
        n = len(self.envs)
        rew, term, finished = np.zeros(n, np.float32), np.zeros(n, np.float32), []
        ended = np.zeros(n, bool)
        for i, e in enumerate(self.envs):
            o, r, te, tr, _ = e.step(int(actions[i]))
            rew[i], term[i] = r, float(te)
            self.returns[i] += r
            if te or tr:
                finished.append(float(self.returns[i]))
                self.returns[i] = 0.0
                o, _ = e.reset()
                ended[i] = True
            self.obs[i] = o
        return rew, term, finished, ended


def evaluate(res: Reservoir, act: Callable[[np.ndarray], np.ndarray], seeds, env_id: str = "CartPole-v1",
             max_steps: int = 100_000) -> np.ndarray:
    """Returns of greedy episodes, one per environment seed, all run side by side (each with its own
    reservoir state from the reset state). `act(counts [n, NE])` -> actions [n]."""
    import gymnasium as gym
    envs = [gym.make(env_id) for _ in seeds]
    obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(envs, seeds)]).astype(np.float32)
    st = res.state(len(envs))
    returns = np.zeros(len(envs))
    alive = np.arange(len(envs))
    for _ in range(max_steps):
        if alive.size == 0:
            break
        sub = State(res.spec, alive.size)
        sub.u, sub.fired, sub.pos = st.u[alive], st.fired[alive], st.pos[alive]
        counts, _ = res.step(sub, obs[alive])
        st.u[alive], st.fired[alive], st.pos[alive] = sub.u, sub.fired, sub.pos
        a = act(counts)
        keep = []
        for j, i in enumerate(alive):
            o, r, te, tr, _ = envs[i].step(int(a[j]))
            returns[i] += r
            obs[i] = o
            if not (te or tr):
                keep.append(i)
        alive = np.asarray(keep, np.int64)
    return returns


@dataclass
class TrainResult:
    net: Sequential
    best_eval: float
    history: list[dict]
    env_steps: int
    episodes: int
    seconds: float


def train(res: Reservoir, cfg: DQNConfig, *, progress: Callable | None = None,
          evaluate_fn: Callable[[Sequential], float] | None = None) -> TrainResult:
    """Train a readout on `res` by deep Q-learning. `evaluate_fn(net)` scores a snapshot (mean
    return of greedy episodes); the best-scoring snapshot is returned. `progress(env_steps, total,
    loss, train_return, best_eval)` follows training (train_return: the mean of the last 100
    exploring episodes)."""
    t0 = time.perf_counter()
    seq = np.random.SeedSequence(cfg.seed)
    init_seq, act_seq, replay_seq, env_seq = seq.spawn(4)
    rng_act, rng_replay = np.random.default_rng(act_seq), np.random.default_rng(replay_seq)
    ne, n_act = res.spec.excitatory, res.spec.actions
    online = readout_net(ne, cfg.hidden, n_act, np.random.default_rng(init_seq))
    target = readout_net(ne, cfg.hidden, n_act, np.random.default_rng(0))
    copy_params(online, target)
    opt = Adam(online.parameters(), lr=cfg.lr)
    buf = Transitions(cfg.replay, ne)
    nstep = NStep(cfg.n_envs, cfg.n_step, cfg.gamma)
    env_seeds = np.random.default_rng(env_seq).integers(0, 2 ** 31, cfg.n_envs)
    envs = EnvBatch(res, cfg.n_envs, env_seeds)
    _, feats = envs.features()

    best, best_params, history, recent = -np.inf, None, [], []
    steps = updates = episodes = 0
    next_eval = cfg.eval_every
    losses = []
    while steps < cfg.env_steps:
        eps = max(cfg.eps_end, cfg.eps_start - (cfg.eps_start - cfg.eps_end) * steps / cfg.eps_steps)
        greedy = online.forward(feats).argmax(axis=1)
        explore = rng_act.random(cfg.n_envs) < eps
        actions = np.where(explore, rng_act.integers(0, n_act, cfg.n_envs), greedy)
        rew, term, finished, ended = envs.step(actions)
        envs.state.reset(ended)
        _, feats2 = envs.features()
        done = nstep.push(feats, actions, rew, feats2, term, ended & (term == 0))
        if done:
            buf.add(*(np.array(col) for col in zip(*done)))
        feats = feats2
        steps += cfg.n_envs
        episodes += len(finished)
        recent = (recent + finished)[-100:]
        if buf.n >= cfg.learn_start:
            frac = min(1.0, steps / cfg.env_steps)
            opt.lr = cfg.lr + (cfg.lr_final - cfg.lr) * frac
            for _ in range(cfg.updates_per_step):
                losses.append(dqn_update(online, target, opt, buf.sample(rng_replay, cfg.batch_size),
                                         cfg.huber))
                updates += 1
                if updates % cfg.target_every == 0:
                    copy_params(online, target)
        if steps >= next_eval or steps >= cfg.env_steps:
            next_eval += cfg.eval_every
            score = evaluate_fn(online) if evaluate_fn is not None else float(np.mean(recent or [0.0]))
            rec = {"env_steps": steps, "episodes": episodes, "eval_return": score,
                   "train_return": float(np.mean(recent or [0.0])), "loss": float(np.mean(losses[-500:] or [0.0])),
                   "epsilon": eps, "seconds": round(time.perf_counter() - t0, 1)}
            history.append(rec)
            if score > best:
                best = score
                best_params = [m.params[k].copy() for m, k in online.parameters()]
            if cfg.stop_at is not None and score >= cfg.stop_at:
                break
        if progress is not None:
            progress(min(steps, cfg.env_steps), cfg.env_steps, float(np.mean(losses[-100:] or [0.0])),
                     float(np.mean(recent or [0.0])), best)
    if best_params is not None:
        for (m, k), v in zip(online.parameters(), best_params):
            m.params[k] = v
    return TrainResult(online, float(best), history, steps, episodes, time.perf_counter() - t0)


# ---------------------------------------------------------------- the cartpole-lsm recipe
# CartPole-v1's observation scales (cart position limit 2.4, pole angle limit 0.21 rad, speeds
# seldom past 1.5): x * 2^input_bits / scale saturates the input rate at these values.
CARTPOLE_SCALES = (2.4, 1.5, 0.2, 1.5)
EVAL_SEEDS = range(10_000, 10_030)      # model selection; disjoint from the test seeds
TEST_SEEDS = range(0, 100)              # the recipe's final check; `hilkit control --seed 0` runs these too


def deployed(res: Reservoir, net: Sequential) -> tuple[Reservoir, dict, int]:
    """The integer policy of a float readout: (reservoir with the quantized readout, its readout
    params, out_shift)."""
    from . import reservoir as R
    w1, b1 = net[0].params["weight"], net[0].params["bias"]
    w2, b2 = net[2].params["weight"], net[2].params["bias"]
    q, shift = R.quantize_readout(w1, b1, w2, b2, res.spec.timesteps)
    spec = R.Spec(**{**res.spec.__dict__, "out_shift": shift})
    params = {**res.p, **{k: np.asarray(v).astype(np.int64) if k != "out_scale" else v for k, v in q.items()}}
    return Reservoir(spec, params), q, shift


def recipe(out_path, *, seed: int = 0, epochs: int | None = None, progress=None,
           config: DQNConfig | None = None, reservoir_config=None) -> dict:
    """cartpole-lsm: a 150-neuron LIF reservoir (fixed, random) with a 120-32-2 readout trained by
    deep Q-learning on CartPole-v1; writes the integer policy as one lsm_policy node.

    `epochs` caps training at epochs x eval_every environment steps (default: config.env_steps);
    training stops early once the deployed (integer) policy's greedy evaluation reaches a mean
    return of 500. `progress(steps, total, loss, acc, info=...)` follows training (acc: the last
    100 training episodes' mean return / 500). The summary's mean_return is measured on 100
    episodes (seeds 0..99) of the written integer policy, as `hilkit control --seed 0` runs them."""
    from threadpoolctl import threadpool_limits

    from . import modelfile
    from . import reservoir as R

    cfg = config or DQNConfig()
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        cfg = DQNConfig(**{**cfg.__dict__, "env_steps": int(epochs) * cfg.eval_every})
    rcfg = reservoir_config or R.ReservoirConfig()
    t0 = time.perf_counter()
    net_seq, dqn_seq = np.random.SeedSequence(seed).spawn(2)
    n_obs, actions = len(CARTPOLE_SCALES), 2
    res_params = R.random_reservoir(np.random.default_rng(net_seq), n_obs, rcfg)
    gain = (np.float32(2 ** rcfg.input_bits) / np.asarray(CARTPOLE_SCALES, np.float32)).astype(np.float32)
    placeholder = {"w1": np.zeros((cfg.hidden, rcfg.excitatory)), "b1": np.zeros(cfg.hidden),
                   "w2": np.zeros((actions, cfg.hidden)), "b2": np.zeros(actions), "out_scale": np.ones(1)}
    attrs = {"neurons": rcfg.neurons, "excitatory": rcfg.excitatory, "timesteps": rcfg.timesteps,
             "leak_shift": rcfg.leak_shift, "input_bits": rcfg.input_bits, "seed": rcfg.seed,
             "hidden": cfg.hidden, "actions": actions, "out_shift": 0}
    res = Reservoir.from_node(attrs, (n_obs + 1,), {"gain": gain, **res_params, **placeholder})
    cfg = DQNConfig(**{**cfg.__dict__, "seed": int(np.random.default_rng(dqn_seq).integers(2 ** 31))})

    def score(net) -> float:
        pol, _, _ = deployed(res, net)
        return float(evaluate(res, lambda c: pol.readout(c)[0], EVAL_SEEDS).mean())

    def follow(steps, total, loss, train_return, best):
        if progress is not None:
            best_s = "-" if not np.isfinite(best) else f"{best:.1f}"
            progress(steps, total, loss, train_return / 500.0,
                     info=f"return {train_return:6.1f} (last 100 episodes)  best eval {best_s}")

    with threadpool_limits(1, user_api="blas"):
        out = train(res, cfg, progress=follow, evaluate_fn=score)
        pol, readout, shift = deployed(res, out.net)
        test = evaluate(res, lambda c: pol.readout(c)[0], TEST_SEEDS)
    seconds = time.perf_counter() - t0
    trainable = out.net.n_params()
    meta = {"recipe": "cartpole-lsm", "env": "CartPole-v1", "seed": int(seed),
            "method": "deep Q-learning of the readout only (double DQN, 3-step returns, replay, target network)",
            "reservoir": {k: (list(v) if isinstance(v, tuple) else v) for k, v in rcfg.__dict__.items()},
            "observation_scales": list(CARTPOLE_SCALES),
            "dqn": {k: v for k, v in cfg.__dict__.items()},
            "env_steps": out.env_steps, "train_episodes": out.episodes, "best_eval_return": out.best_eval,
            "eval_seeds": [EVAL_SEEDS.start, EVAL_SEEDS.stop], "test_seeds": [TEST_SEEDS.start, TEST_SEEDS.stop],
            "test_mean_return": float(test.mean()), "test_min_return": float(test.min()),
            "trainable_parameters": int(trainable), "reservoir_neurons": rcfg.neurons,
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in out.history]}
    # (no wall times in the file: the same seed writes the same bytes)
    graph, arrays = R.build_graph(n_obs, res_params, gain, readout, shift, cfg=rcfg, name="cartpole-lsm", meta=meta)
    saved = modelfile.save(out_path, graph, arrays)
    if progress is not None:
        progress(out.env_steps, out.env_steps, float(out.history[-1]["loss"]) if out.history else 0.0,
                 float(test.mean()) / 500.0,
                 info=f"test: mean return {test.mean():.1f}, min {test.min():.0f} over {len(test)} episodes")
    return {"recipe": "cartpole-lsm", "path": str(out_path), "hash": saved.hash, "env": "CartPole-v1",
            "mean_return": float(test.mean()), "min_return": float(test.min()), "test_episodes": len(test),
            "best_eval_return": out.best_eval, "env_steps": out.env_steps, "train_episodes": out.episodes,
            "trainable_parameters": int(trainable), "reservoir_neurons": rcfg.neurons,
            "excitatory_neurons": rcfg.excitatory, "train_seconds": round(seconds, 3), "seed": int(seed),
            "history": out.history}
