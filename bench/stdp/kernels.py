"""Instructions per inference, per layer, of the binary_snn kernels on boards under QEMU (exact
counts): the bit-packed binary kernels (AND + popcount, and bit-sliced where the code generator
picks it) against the int8 kernels of the same layers (event-driven, and the plain dense one), on
the same test images, so the same spikes.

    .venv/bin/python bench/stdp/kernels.py MODEL.npz [--boards mps2-an386 pico] [--samples 20]

Layer i's cost is the difference between the models made of its first i + 1 and first i layers
(the input coding is in the first). All kernels must agree with the reference on every counter.
Writes kernels-<model>.json and .md into bench/stdp/results."""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from hilkit.codegen import ops_binary
from hilkit.models import modelfile, stdp

from boards import run_board

VARIANTS = {  # name: (kernel bits, INT8_KERNEL, SLICED_MIN_WORDS)
    "b1 (as generated)": (1, None, ops_binary.SLICED_MIN_WORDS),
    "b1 AND+popcount": (1, None, 0),
    "int8 event": (8, "event", None),
    "int8 dense": (8, "dense", None),
}


def prefix_models(path: Path, work: Path, kernel_bits: int) -> list[Path]:
    """The binary_snn of `path` cut after each of its layers (no readout), as model files."""
    m = modelfile.load(path)
    node = m.layers[0]
    out = []
    for n in range(1, len(node["attrs"]["layers"]) + 1):
        attrs = {**node["attrs"], "layers": node["attrs"]["layers"][:n], "kernel_bits": kernel_bits}
        attrs.pop("exp", None)
        params = {f"l{i}.{r}": m.params(node)[f"l{i}.{r}"] for i in range(n) for r in ("weight", "threshold")}
        graph, arrays = stdp.build_graph(attrs, params, m.input_shape, name=f"{m.name}-l{n}-k{kernel_bits}")
        p = work / f"{m.name}-l{n}-k{kernel_bits}.npz"
        modelfile.save(p, graph, arrays)
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--boards", nargs="+", default=["mps2-an386", "pico"])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stdp-kernels-"))
    name = modelfile.load(args.model).name
    binary = modelfile.load(args.model).layers[0]["attrs"].get("kernel_bits", 1) == 1
    rows = []
    for variant in args.variants:
        bits, int8, sliced = VARIANTS[variant]
        if bits == 1 and not binary:
            continue
        models = prefix_models(args.model, work, bits)
        for board in args.boards:
            totals = []
            for p in models:
                if int8 is not None:
                    ops_binary.INT8_KERNEL = int8
                if sliced is not None:
                    ops_binary.SLICED_MIN_WORDS = sliced
                r = run_board(p, board, "b1" if bits == 1 else f"s8_{int8}", work / variant.replace(" ", "_"),
                              args.samples)
                assert r["spike_agreement"] == 1.0, (variant, board, p)
                totals.append(r["instructions_per_inference"])
            per_layer = np.diff([0.0] + totals).tolist()
            rows.append({"variant": variant, "board": board, "samples": args.samples, "total": totals[-1],
                         "per_layer": per_layer, "synops_per_inference": r["synops_per_inference"],
                         "spikes_per_layer": r["spikes_per_layer"]})
            print(f"{variant:18s} {board:11s} total {totals[-1]:,.0f}  per layer "
                  f"{', '.join(f'{v:,.0f}' for v in per_layer)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"kernels-{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    n_layers = len(rows[0]["per_layer"])
    lines = [f"Instructions per inference of the binary_snn of {name} (exact QEMU counts, mean over "
             f"{args.samples} test images; layer 0 includes the input's rate coding; no readout).", "",
             "| kernel | board | " + " | ".join(f"l{i}" for i in range(n_layers)) + " | total |",
             "|---|---|" + "---|" * (n_layers + 1)]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['board']} | " + " | ".join(f"{v:,.0f}" for v in r["per_layer"])
                     + f" | {r['total']:,.0f} |")
    (args.out / f"kernels-{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
