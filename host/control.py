"""`hilkit control`: a closed control loop with the environment on the host and the policy on the board.

Each environment step sends the observation over the link as one INFER of the model's input
[observation..., reset flag] (the flag is 1 on an episode's first step: the board's reservoir
starts the episode from its reset state) and reads the action from the reply's counters; the host
steps the environment with it. The board runs a whole episode as consecutive inferences of one
stateful model (docs/reservoir-rl.md). A retransmitted request gets the device's stored reply, so
a retry never steps the reservoir twice.

The numpy policy (hilkit.models.reservoir) is compared two ways: in lockstep on exactly the inputs
the board got (action agreement, bit-identical outputs and counters) and on its own episodes with
the same environment seeds (returns).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError

CACHE = Path("out/control")
ENV_ID = "CartPole-v1"


@dataclass
class Episode:
    seed: int
    inputs: list = field(default_factory=list)      # the model inputs sent, one per step
    actions: list = field(default_factory=list)     # the board's actions
    outputs: list = field(default_factory=list)     # the board's outputs (float32)
    extra: list = field(default_factory=list)       # the board's counters
    cycles: list = field(default_factory=list)
    insns: list = field(default_factory=list)
    ret: float = 0.0


def make_env(env_id: str = ENV_ID):
    try:
        import gymnasium as gym
    except ImportError:
        raise UsageError("the control loop needs gymnasium: pip install 'hilkit[rl]'") from None
    try:
        return gym.make(env_id)
    except Exception as e:  # noqa: BLE001 - gymnasium raises several types for unknown ids
        raise UsageError(f"cannot make environment {env_id!r}: {e}") from None


def load_policy(model):
    """(loaded model, lsm_policy node, reservoir.Reservoir) of a model file whose graph is one lsm_policy."""
    from hilkit.models import modelfile, reservoir

    m = model if isinstance(model, modelfile.LoadedModel) else modelfile.load(model)
    nodes = [layer for layer in m.layers if layer["op"] == "lsm_policy"]
    if len(m.layers) != 1 or not nodes:
        raise UsageError(f"{m.path or m.name}: `hilkit control` runs a policy model (one lsm_policy layer, made by "
                         "`hilkit train cartpole-lsm`), this one has "
                         f"{', '.join(layer['op'] for layer in m.layers)}")
    node = nodes[0]
    try:
        res = reservoir.Reservoir.from_node(node["attrs"], m.shapes[node["inputs"][0]], m.params(node))
    except reservoir.LSMError as e:
        raise UsageError(f"{m.path or m.name}: {e}") from None
    return m, node, res


def check_env(env, res, env_id: str) -> None:
    n_obs = int(np.prod(env.observation_space.shape))
    n_act = getattr(env.action_space, "n", None)
    if n_obs != res.spec.n_obs or n_act != res.spec.actions:
        raise UsageError(f"{env_id} has {n_obs} observations and {n_act} actions; the policy takes "
                         f"{res.spec.n_obs} and chooses among {res.spec.actions}")


def numpy_episodes(res, seeds, env_id: str = ENV_ID) -> np.ndarray:
    """Returns of the numpy policy's own episodes (all run together, one per seed)."""
    from hilkit.models.qlearn import evaluate
    check_env(make_env(env_id), res, env_id)
    return evaluate(res, lambda counts: res.readout(counts)[0], seeds, env_id)


def lockstep(res, episodes: list[Episode]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The numpy policy on exactly the inputs each board episode got, episodes side by side:
    per episode (actions [S], outputs [S, A], counters [S, n_counters])."""
    from hilkit.models.reservoir import COUNTERS

    n = len(episodes)
    length = max((len(e.inputs) for e in episodes), default=0)
    st = res.state(n)
    acts = [[] for _ in range(n)]
    outs = [[] for _ in range(n)]
    cnts = [[] for _ in range(n)]
    for t in range(length):
        idx = np.asarray([i for i, e in enumerate(episodes) if t < len(e.inputs)], np.int64)
        x = np.stack([np.asarray(episodes[i].inputs[t], np.float32) for i in idx])
        sub = res.state(idx.size)
        sub.u, sub.fired, sub.pos = st.u[idx], st.fired[idx], st.pos[idx]
        a, y, c = res.policy_step(sub, x[:, :-1], reset=x[:, -1] != 0)
        st.u[idx], st.fired[idx], st.pos[idx] = sub.u, sub.fired, sub.pos
        for j, i in enumerate(idx):
            acts[i].append(int(a[j]))
            outs[i].append(y[j])
            cnts[i].append([int(c[k][j]) for k in COUNTERS])
    return [(np.asarray(acts[i], np.int64), np.asarray(outs[i], np.float32).reshape(-1, res.spec.actions),
             np.asarray(cnts[i], np.int64).reshape(-1, len(COUNTERS))) for i in range(n)]


def _frame_bytes(n_in: int, n_out: int, n_extra: int) -> tuple[int, int]:
    """Bytes on the wire of one STEP: the request (with the leading 0x00) and the reply."""
    from .protocol import MsgType, encode_frame, encode_infer_reply
    req = 1 + len(encode_frame(MsgType.INFER, 1, bytes(4 * n_in)))
    rep = len(encode_frame(MsgType.INFER | MsgType.REPLY, 1, encode_infer_reply([1.0] * n_out, 1, [1] * n_extra)))
    return req, rep


def control(model, board_id: str, *, episodes: int, seed: int = 0, port=None, baud=None, env_id: str = ENV_ID,
            console=None, workdir: Path = CACHE, timeout: float = 5.0) -> dict:
    """Run `episodes` episodes (environment seeds seed, seed + 1, ...) with the policy on the board;
    returns the report (see docs/reservoir-rl.md for every key)."""
    from hilkit.models.reservoir import COUNTERS

    from . import boards, ports, protocol, report as rep, runner
    from .run import prepare

    if episodes < 1:
        raise UsageError("--episodes must be at least 1")
    board = boards.get_board(board_id)
    port = ports.resolve_port(port, board.id)
    if port is None and not board.can_emulate and board.runtime != "host":
        raise UsageError(f"board {board.id} has no QEMU twin: give --port DEV of the real board")
    p = Path(model)
    _, node, _ = load_policy(p / "model.npz" if p.is_dir() else p)   # fail before building
    env = make_env(env_id)
    out_dir, man = prepare(model, board.id, "libm", workdir)
    loaded, node, res = load_policy(out_dir / "model.npz")
    check_env(env, res, env_id)
    names = man.get("extra") or []
    try:
        i_action = names.index(f"{node['name']}.action")
        i_counters = [names.index(f"{node['name']}.{k}") for k in COUNTERS]
    except ValueError:
        raise UsageError(f"{out_dir}: the firmware reports no {node['name']}.action counter: compile it again") from None

    eps: list[Episode] = []
    t0 = time.perf_counter()
    with runner.start(board, out_dir / man["image"], port=port, baud=baud) as target:
        client = protocol.Client(target.link, timeout=timeout)
        info = client.info()
        if info.get("model_hash") and info["model_hash"] != man["model_hash"]:
            raise UsageError(f"the board runs model {info['model_hash']}, not {man['model_hash']}: flash it first")
        target.instruction_counts()           # drop anything from before the first step
        with rep.progress(console, f"{man['model']} on {board.id}: episodes", episodes) as advance:
            for e in range(episodes):
                ep = Episode(seed=seed + e)
                obs, _ = env.reset(seed=ep.seed)
                done = False
                while not done:
                    x = np.concatenate([np.asarray(obs, np.float32), [np.float32(1.0 if not ep.inputs else 0.0)]])
                    r = client.infer(x)
                    if len(r.extra) != len(names):
                        raise protocol.ProtocolError(f"the board sent {len(r.extra)} counters, expected {len(names)}")
                    a = int(r.extra[i_action])
                    if not 0 <= a < res.spec.actions:
                        raise protocol.ProtocolError(f"the board chose action {a} of {res.spec.actions}")
                    ep.inputs.append(x)
                    ep.actions.append(a)
                    ep.outputs.append(np.asarray(r.outputs, np.float32))
                    ep.extra.append([int(r.extra[i]) for i in i_counters])
                    ep.cycles.append(int(r.cycles))
                    counts = target.instruction_counts()
                    if counts:
                        ep.insns.append(counts[-1])
                    obs, rew, te, tr, _ = env.step(a)
                    ep.ret += float(rew)
                    done = te or tr
                eps.append(ep)
                advance()
        wall = time.perf_counter() - t0
        stats = client.stats
        kind = target.kind

    ref = lockstep(res, eps)
    ref_returns = numpy_episodes(res, [ep.seed for ep in eps], env_id)
    return _report(man, board, loaded, node, res, eps, ref, ref_returns, stats, wall, kind, env_id, seed)


def _report(man, board, loaded, node, res, eps, ref, ref_returns, stats, wall, kind, env_id, seed) -> dict:
    s = res.spec
    returns = np.asarray([ep.ret for ep in eps])
    steps = sum(len(ep.actions) for ep in eps)
    agree = sum(int(np.sum(np.asarray(ep.actions) == r[0])) for ep, r in zip(eps, ref))
    outputs_identical = all(np.array_equal(np.asarray(ep.outputs, np.float32).view(np.uint32), r[1].view(np.uint32))
                            for ep, r in zip(eps, ref))
    counters_identical = all(np.array_equal(np.asarray(ep.extra, np.int64), r[2]) for ep, r in zip(eps, ref))
    insns = [i for ep in eps for i in ep.insns]
    insns_ok = len(insns) == steps and steps > 0
    insns_mean = float(np.mean(insns)) if insns_ok else None
    clock_hz = board.clock_mhz * 1e6
    step_us = insns_mean * board.cpi / clock_hz * 1e6 if insns_mean is not None else None
    source = "estimate: QEMU instructions x CPI / clock" if step_us is not None else None
    cycles = [c for ep in eps for c in ep.cycles]
    if step_us is None and kind == "serial" and board.runtime == "bare-metal":
        step_us, source = float(np.mean(cycles)) / clock_hz * 1e6, "board cycle counter"
    elif step_us is None and kind == "host" and cycles:
        step_us, source = float(np.median(cycles)) / 1000.0, "clock_gettime (median)"
    req_bytes, rep_bytes = _frame_bytes(s.n_obs + 1, s.actions, len(man.get("extra") or []))
    link_s = (req_bytes + rep_bytes) * 10 / (board.baud or 115200)          # 8N1 UART: 10 bits a byte
    compute_hz = 1e6 / step_us if step_us else None
    counters = np.asarray([c for ep in eps for c in ep.extra], np.int64).reshape(-1, 5)
    trainable = s.hidden * s.excitatory + s.hidden + s.actions * s.hidden + s.actions
    return {
        "model": man["model"], "model_hash": man["model_hash"], "board": board.id, "runtime": kind, "env": env_id,
        "seed": int(seed),
        "episodes": len(eps), "mean_return": float(returns.mean()), "min_return": float(returns.min()),
        "max_return": float(returns.max()), "returns": [float(r) for r in returns],
        "reference_returns": [float(r) for r in ref_returns], "reference_mean_return": float(np.mean(ref_returns)),
        "returns_identical": bool(np.array_equal(returns, ref_returns)),
        "steps": int(steps),
        "action_agreement": agree / steps if steps else None,
        "outputs_identical": bool(outputs_identical), "counters_identical": bool(counters_identical),
        "instructions_per_step": insns_mean,
        "instructions_per_step_min": int(min(insns)) if insns_ok else None,
        "instructions_per_step_max": int(max(insns)) if insns_ok else None,
        "cycles_per_step": float(np.mean(cycles)) if kind == "serial" else None,
        "step_us": step_us,
        "step_source": source,
        "clock_mhz": board.clock_mhz, "cpi": board.cpi,
        "control_rate_hz": compute_hz,
        "link_round_trips": int(stats.requests), "link_retries": int(stats.retries),
        "link_bytes_per_step": req_bytes + rep_bytes, "baud": board.baud,
        "link_rate_hz": 1.0 / link_s,
        "sustained_rate_hz": min(compute_hz, 1.0 / link_s) if compute_hz else None,
        "host_round_trip_ms": wall / max(1, stats.requests) * 1e3,
        "energy_uj_per_step": (step_us * board.active_mw / 1000.0
                               if step_us is not None and board.active_mw is not None and board.runtime != "host"
                               else None),
        "trainable_parameters": int(trainable), "reservoir_neurons": s.neurons, "excitatory_neurons": s.excitatory,
        "readout_hidden": s.hidden, "timesteps_per_step": s.timesteps,
        "spikes_per_step": float((counters[:, 2] + counters[:, 3]).mean()) if len(counters) else None,
        "input_spikes_per_step": float(counters[:, 1].mean()) if len(counters) else None,
        "synops_per_step": float(counters[:, 4].mean()) if len(counters) else None,
        "wall_seconds": round(wall, 3),
    }


def print_report(r: dict, console) -> None:
    from rich.table import Table

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    t = Table(title=f"{r['model']} on {r['board']} ({r['runtime']}): {r['env']}, {r['episodes']} episodes")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("mean / min return (board)", f"{r['mean_return']:.1f} / {r['min_return']:.0f}")
    t.add_row("mean return (numpy policy, same seeds)", f"{r['reference_mean_return']:.1f}")
    t.add_row("action agreement (lockstep)", f"{r['action_agreement'] * 100:.2f} % of {r['steps']} steps")
    t.add_row("outputs / counters bit-identical", f"{r['outputs_identical']} / {r['counters_identical']}")
    t.add_row("instructions / control step", fmt(r["instructions_per_step"], ",.0f"))
    t.add_row(f"control step ({r['step_source'] or 'n/a'})", fmt(r["step_us"], ",.1f") + " us")
    t.add_row(f"control rate at {r['clock_mhz']:g} MHz (compute)", fmt(r["control_rate_hz"], ",.0f") + " Hz")
    t.add_row(f"link: {r['link_bytes_per_step']} bytes/step at {r['baud']} baud", fmt(r["link_rate_hz"], ",.0f") + " Hz")
    t.add_row("link round trips (retries)", f"{r['link_round_trips']:,} ({r['link_retries']})")
    t.add_row("spikes / synaptic ops per step", f"{fmt(r['spikes_per_step'], ',.0f')} / {fmt(r['synops_per_step'], ',.0f')}")
    t.add_row("reservoir neurons / trainable parameters", f"{r['reservoir_neurons']} / {r['trainable_parameters']:,}")
    console.print(t)
