"""Comparison of a board's outputs with the reference, the estimates, and the JSON/table report."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

# Horowitz, ISSCC 2014, 45 nm (docs/references.md): energy per fp32 multiply-accumulate.
PJ_PER_FP32_MAC = 4.6


@contextlib.contextmanager
def progress(console, label: str, total: int):
    """A rich progress bar on stderr; yields a function that advances it by one."""
    if console is None:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as prog:
        task = prog.add_task(label, total=total)
        yield lambda: prog.advance(task)


def _mean_or_none(v):
    return float(np.mean(v)) if len(v) else None


def make_report(man: dict, board, outputs: np.ndarray, ref: np.ndarray, labels: np.ndarray, *,
                cycles, insns, image: Path, runtime_kind: str) -> dict:
    """Build the report dict (the keys DESIGN.md fixes, plus a few more)."""
    from hilkit.codegen.build import image_sizes

    pred, ref_pred = outputs.argmax(axis=1), ref.argmax(axis=1)
    disagree = np.flatnonzero(pred != ref_pred)
    insns_mean = _mean_or_none(insns) if len(insns) == len(outputs) else None
    clock_hz = board.clock_mhz * 1e6
    cycles_mean = None
    if runtime_kind == "qemu-system" or runtime_kind == "qemu-user":
        latency_us = insns_mean * board.cpi / clock_hz * 1e6 if insns_mean is not None else None
        latency_source = "estimate: QEMU instructions x CPI / clock"
    elif runtime_kind == "serial" and board.runtime == "bare-metal":
        cycles_mean = _mean_or_none(cycles)
        latency_us = cycles_mean / clock_hz * 1e6
        latency_source = "board cycle counter"
    else:  # host process or Linux board (pipe, ssh): the firmware reports nanoseconds from clock_gettime
        latency_us = float(np.median(cycles)) / 1000.0
        latency_source = "clock_gettime (median)"
    energy_op_uj = man["macs"] * PJ_PER_FP32_MAC * 1e-6
    if board.active_mw is not None and latency_us is not None and board.runtime != "host":
        energy_uj = latency_us * board.active_mw / 1000.0
        energy_source = "estimate: latency x board active power"
    else:
        energy_uj = energy_op_uj
        energy_source = "op-level: MACs x 4.6 pJ (45 nm)"
    flash, ram = image_sizes(image, board)
    return {
        "model": man["model"], "board": board.id, "exp": man.get("exp", "libm"), "samples": int(len(outputs)),
        "accuracy": float(np.mean(pred == labels)),
        "reference_accuracy": float(np.mean(ref_pred == labels)),
        "top1_agreement": float(np.mean(pred == ref_pred)),
        "max_abs_diff": float(np.max(np.abs(outputs - ref))),
        "instructions_per_inference": insns_mean,
        "cycles_per_inference": cycles_mean,
        "latency_us": latency_us, "latency_source": latency_source,
        "energy_uj": energy_uj, "energy_source": energy_source,
        "flash_bytes": flash, "ram_bytes": ram,
        "energy_op_uj": energy_op_uj,
        # True when every sample cost the same instructions (no data-dependent branches).
        "instructions_identical": bool(len(set(insns)) == 1) if insns else None,
        "instructions_min": min(insns) if insns else None, "instructions_max": max(insns) if insns else None,
        "disagreeing_samples": [int(i) for i in disagree],
        "arena_bytes": man["arena_bytes"], "macs": man["macs"], "runtime": runtime_kind,
        "model_hash": man["model_hash"],
    }


def print_report(r: dict, console) -> None:
    from rich.table import Table
    t = Table(title=f"{r['model']} on {r['board']} (exp={r['exp']}, {r['samples']} samples, {r['runtime']})")
    t.add_column("metric")
    t.add_column("value", justify="right")

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    t.add_row("accuracy (board)", f"{r['accuracy'] * 100:.2f} %")
    t.add_row("accuracy (reference)", f"{r['reference_accuracy'] * 100:.2f} %")
    t.add_row("top-1 agreement", f"{r['top1_agreement'] * 100:.2f} %")
    t.add_row("max abs output difference", f"{r['max_abs_diff']:.2e}")
    if "litert_agreement" in r:
        t.add_row("top-1 agreement with LiteRT", f"{r['litert_agreement'] * 100:.2f} %")
        t.add_row("max abs difference vs LiteRT", f"{r['litert_max_abs_diff']:.2e}")
    t.add_row("instructions / inference", fmt(r["instructions_per_inference"], ",.0f"))
    t.add_row("cycles / inference", fmt(r["cycles_per_inference"], ",.0f"))
    t.add_row(f"latency ({r['latency_source']})", fmt(r["latency_us"], ",.1f") + " us")
    t.add_row(f"energy ({r['energy_source']})", fmt(r["energy_uj"], ",.3f") + " uJ")
    t.add_row("flash / RAM", f"{fmt(r['flash_bytes'], ',')} / {fmt(r['ram_bytes'], ',')} bytes")
    t.add_row("activation arena", f"{r['arena_bytes']:,} bytes")
    if r.get("wall_s") is not None:
        t.add_row("wall time (start to last answer)", f"{r['wall_s']:.2f} s")
    if "spike_agreement" in r:
        if "timesteps" in r:
            t.add_row("time steps", str(r["timesteps"]))
        t.add_row("spikes / synaptic ops per inference",
                  f"{r['spikes_per_inference']:,.0f} / {r['synops_per_inference']:,.0f}")
        t.add_row("spike agreement (per-layer counts)", f"{r['spike_agreement'] * 100:.2f} %")
    if r["disagreeing_samples"]:
        t.add_row("disagreeing samples", ", ".join(map(str, r["disagreeing_samples"][:20])))
    console.print(t)
