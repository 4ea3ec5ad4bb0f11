"""Spiking reservoir RL measurements for docs/reservoir-rl.md: the cartpole-lsm recipe over seeds
(returns over 100 test episodes, trainable parameters, training time), the closed loop on boards
under QEMU (action agreement, instructions per control step, the control rate at the board's
clock and over its UART), and the reservoir's simulation length against returns and cost.

    .venv/bin/python bench/lsm/lsm_bench.py train 0 1 2            # ~1-3 min a seed
    .venv/bin/python bench/lsm/lsm_bench.py boards --episodes 20   # mps2-an386: 20 episodes, ~2 min
    .venv/bin/python bench/lsm/lsm_bench.py boards --all --episodes 3
    .venv/bin/python bench/lsm/lsm_bench.py timesteps 25 50 100    # train + measure at each T

Results go to bench/lsm/results/*.json and .md; models and firmware to out/lsm-bench/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = Path("out/lsm-bench")
QEMU_BOARDS = ("mps2-an386", "mps2-an500", "mps3-an547", "pico", "pico2", "rpi4", "rpi-zero2", "rpi2")


def _save(name: str, obj, table: list[str] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(obj, indent=1) + "\n")
    if table:
        (RESULTS / f"{name}.md").write_text("\n".join(table) + "\n")
    return p


def _model(seed: int = 0, **kw) -> Path:
    """The cartpole-lsm model of this seed (trained once, kept in out/lsm-bench/)."""
    from hilkit.models import qlearn, reservoir
    tag = "".join(f"-{k}{v}" for k, v in sorted(kw.items()))
    path = WORK / f"cartpole-lsm-s{seed}{tag}.npz"
    if not path.is_file():
        rcfg = replace(reservoir.ReservoirConfig(), **kw) if kw else None
        qlearn.recipe(path, seed=seed, reservoir_config=rcfg)
    return path


def train(seeds) -> dict:
    from hilkit.models import modelfile
    rows = []
    for s in seeds:
        t0 = time.perf_counter()
        path = WORK / f"cartpole-lsm-s{s}.npz"
        path.unlink(missing_ok=True)
        _model(s)
        meta = modelfile.load(path).graph["meta"]
        rows.append({"seed": s, "mean_return": meta["test_mean_return"], "min_return": meta["test_min_return"],
                     "best_eval_return": meta["best_eval_return"], "env_steps": meta["env_steps"],
                     "train_episodes": meta["train_episodes"], "trainable_parameters": meta["trainable_parameters"],
                     "reservoir_neurons": meta["reservoir_neurons"], "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], flush=True)
    table = ["| seed | mean return (100 episodes) | min | env steps | episodes | trainable params | neurons | s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['seed']} | {r['mean_return']:.1f} | {r['min_return']:.0f} | {r['env_steps']:,} | "
              f"{r['train_episodes']} | {r['trainable_parameters']:,} | {r['reservoir_neurons']} | {r['seconds']} |"
              for r in rows]
    _save("train", rows, table)
    return {"rows": rows}


def boards(board_ids, episodes: int, seed: int = 0) -> dict:
    from hilkit.host import control
    model = _model(seed)
    rows = []
    for b in board_ids:
        r = control.control(model, b, episodes=episodes, seed=0, workdir=WORK / "build")
        keep = ("board", "episodes", "steps", "mean_return", "min_return", "reference_mean_return", "action_agreement",
                "outputs_identical", "counters_identical", "instructions_per_step", "instructions_per_step_min",
                "instructions_per_step_max", "clock_mhz", "cpi", "step_us", "control_rate_hz", "link_bytes_per_step",
                "baud", "link_rate_hz", "sustained_rate_hz", "energy_uj_per_step", "link_round_trips", "link_retries",
                "spikes_per_step", "synops_per_step", "trainable_parameters", "reservoir_neurons", "wall_seconds")
        rows.append({k: r[k] for k in keep})
        print(rows[-1], flush=True)
    table = ["| board | episodes | mean return | agreement | bit-identical | instructions / step | step (est.) | "
             "rate at clock | UART rate |", "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['board']} | {r['episodes']} | {r['mean_return']:.1f} | {r['action_agreement']:.4f} | "
                     f"{r['outputs_identical'] and r['counters_identical']} | {r['instructions_per_step']:,.0f} | "
                     f"{r['step_us'] / 1000:.2f} ms @ {r['clock_mhz']:g} MHz | {r['control_rate_hz']:,.0f} Hz | "
                     f"{r['link_rate_hz']:,.0f} Hz |")
    name = "boards" if len(board_ids) > 1 else f"control-{board_ids[0]}"
    _save(name, rows, table)
    return {"rows": rows}


def timesteps(values, seed: int = 0) -> dict:
    """Simulation steps per control step: returns of the trained policy and its cost on mps2-an386."""
    from hilkit.host import control
    from hilkit.models import modelfile
    rows = []
    for T in values:
        path = _model(seed, timesteps=int(T))
        meta = modelfile.load(path).graph["meta"]
        r = control.control(path, "mps2-an386", episodes=3, seed=0, workdir=WORK / "build")
        rows.append({"timesteps": int(T), "mean_return": meta["test_mean_return"], "min_return": meta["test_min_return"],
                     "env_steps": meta["env_steps"], "instructions_per_step": r["instructions_per_step"],
                     "control_rate_hz": r["control_rate_hz"], "action_agreement": r["action_agreement"]})
        print(rows[-1], flush=True)
    table = ["| T (1 ms steps) | mean return (100 episodes) | min | env steps | instructions / step | rate at 25 MHz |",
             "|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['timesteps']} | {r['mean_return']:.1f} | {r['min_return']:.0f} | {r['env_steps']:,} | "
              f"{r['instructions_per_step']:,.0f} | {r['control_rate_hz']:,.0f} Hz |" for r in rows]
    _save("timesteps", rows, table)
    return {"rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("train")
    s.add_argument("seeds", nargs="*", type=int, default=[0])
    s = sub.add_parser("boards")
    s.add_argument("--board", action="append", help="board id (repeatable; default mps2-an386)")
    s.add_argument("--all", action="store_true", help="every QEMU board")
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--seed", type=int, default=0, help="the recipe seed of the model")
    s = sub.add_parser("timesteps")
    s.add_argument("values", nargs="*", type=int, default=[25, 50, 100])
    a = p.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    if a.what == "train":
        train(a.seeds)
    elif a.what == "boards":
        ids = list(QEMU_BOARDS) if a.all else (a.board or ["mps2-an386"])
        boards(ids, a.episodes, a.seed)
    else:
        timesteps(a.values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
