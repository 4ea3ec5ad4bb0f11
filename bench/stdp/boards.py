"""Run an STDP model (binary_snn -> readout) on boards under QEMU over the digits test split:
board counters against the integer reference (spike_agreement), top-1 against the reference,
exact instructions per inference; optionally the same model on the int8 kernels of the same layers.

    .venv/bin/python bench/stdp/boards.py MODEL.npz --boards mps2-an386 pico [--limit N]
        [--kernels b1 s8_event s8_dense] [--json OUT]

`--kernels` compiles the model once per kernel: b1 (bit-packed binary kernels; needs a binary
model), s8_event / s8_dense (the int8 kernels: the +/-1 weights stored as int8). All kernels
compute the same integers, so every run must show spike_agreement 1.0 against the same reference.
This is what `hilkit run` will report for these models once the lead wires `stdp.metrics` in."""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hilkit.codegen import ops_binary
from hilkit.host import boards, protocol, runner
from hilkit.host.compile import compile_model
from hilkit.models import data, modelfile, reference, stdp


def int8_copy(model_path: Path, out: Path) -> Path:
    """The same model with kernel_bits 8 (the +/-1 weights as int8): the same layer on the int8 kernels."""
    m = modelfile.load(model_path)
    graph = json.loads(json.dumps(m.graph))
    for layer in graph["layers"]:
        if layer["op"] == "binary_snn":
            layer["attrs"]["kernel_bits"] = 8
    graph["name"] = graph["name"] + "-int8"
    modelfile.save(out, graph, dict(m.arrays))
    return out


def run_board(model_path: Path, board_id: str, kernel: str, workdir: Path, limit: int | None = None) -> dict:
    m = modelfile.load(model_path)
    if kernel != "b1":
        ops_binary.INT8_KERNEL = kernel.split("_", 1)[1]
        if m.layers[0]["attrs"].get("kernel_bits", 1) == 1:
            model_path = int8_copy(model_path, workdir / f"{model_path.stem}-int8.npz")
            m = modelfile.load(model_path)
    t0 = time.perf_counter()
    c = compile_model(model_path, board_id, workdir / f"{board_id}-{kernel}")
    t_build = time.perf_counter() - t0
    _, _, x, y = data.digits_split()
    x = data.as_images(x)
    if limit:
        x, y = x[:limit], y[:limit]
    ref = reference.forward(m, x).reshape(len(x), -1)
    outs, extras, insns, cycles = [], [], [], []
    t0 = time.perf_counter()
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel(), timeout=60.0)
            outs.append(r.outputs)
            extras.append(r.extra)
            cycles.append(r.cycles)
            insns += target.instruction_counts() or []
    t_run = time.perf_counter() - t0
    outs = np.stack(outs)
    classes = outs.shape[1] == 10       # a bare binary_snn (no readout) has no accuracy
    met = stdp.metrics(c.manifest, m, x, extras, instructions=insns if len(insns) == len(x) else None)
    return {"model": m.name, "board": board_id, "kernel": kernel, "samples": int(len(x)),
            "accuracy": float((outs.argmax(axis=1) == y).mean()) if classes else None,
            "reference_accuracy": float((ref.argmax(axis=1) == y).mean()) if classes else None,
            "top1_agreement": float((outs.argmax(axis=1) == ref.argmax(axis=1)).mean()),
            "max_abs_diff": float(np.abs(outs - ref).max()),
            "instructions_per_inference": float(np.mean(insns)) if len(insns) == len(x) else None,
            "instructions_min_max": [int(min(insns)), int(max(insns))] if insns else None,
            "flash_image": c.manifest["image"], "build_seconds": round(t_build, 1), "run_seconds": round(t_run, 1),
            **met}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--boards", nargs="+", default=["mps2-an386", "pico"])
    ap.add_argument("--kernels", nargs="+", default=["b1"], choices=("b1", "s8_event", "s8_dense"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    for b in args.boards:
        boards.get_board(b)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="stdp-boards-"))
    rows = []
    for kernel in args.kernels:
        for b in args.boards:
            r = run_board(args.model, b, kernel, work, args.limit)
            rows.append(r)
            acc = "" if r["accuracy"] is None else (f"accuracy {r['accuracy'] * 100:.2f} % (reference "
                                                    f"{r['reference_accuracy'] * 100:.2f} %), ")
            print(f"{r['model']} {b} {kernel}: {acc}top-1 agreement {r['top1_agreement']:.4f}, "
                  f"spike_agreement {r['spike_agreement']:.4f}, max |diff| {r['max_abs_diff']:.3g}, "
                  f"instructions/inference {r['instructions_per_inference']}, {r['samples']} samples, "
                  f"{r['run_seconds']} s", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
