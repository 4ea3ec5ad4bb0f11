"""Kernel memory report of STDP models: the bytes the generated C stores for each layer's kernels
(bit-packed binary, or int8) against the same kernels as float32.

    .venv/bin/python bench/stdp/memory.py MODEL.npz [MODEL.npz ...]

Reads the arrays the code generator emits (codegen/ops_binary.py), not a formula. Writes
memory.json and memory.md into bench/stdp/results."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hilkit.codegen import ir, ops_binary, passes
from hilkit.models import modelfile


def report(path: Path) -> dict:
    m = modelfile.load(path)
    g = passes.run_default(ir.from_model(m))
    out = {"model": m.name, "path": str(path), "nodes": []}
    for n in g.nodes:
        if n.op == "binary_snn":
            mem = ops_binary.kernel_bytes(n)
            mem["kernel_bits"] = n.attrs.get("kernel_bits", 1)
            mem["sliced"] = [ops_binary.sliced(l) for l in ops_binary.layout(n).layers]
            out["nodes"].append({"node": n.name, **mem})
        elif n.op in ("dense", "conv2d"):
            out.setdefault("float_layers", []).append({"node": n.name, "op": n.op,
                                                       "bytes": 4 * sum(int(a.size) for a in n.params.values())})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    reps = [report(p) for p in args.models]
    lines = ["| model | layer | kernel shape | weights | stored as | bytes | float32 bytes | compression |",
             "|---|---|---|---|---|---|---|---|"]
    for r in reps:
        for node in r["nodes"]:
            for row, sl in zip(node["layers"], node["sliced"]):
                kind = ("1 bit, sliced masks" if sl else "1 bit, per-filter words") if node["kernel_bits"] == 1 \
                    else "int8"
                shape = "x".join(map(str, row["shape"]))
                lines.append(f"| {r['model']} | {row['layer']} | {shape} | {row['weights']} | "
                             f"{kind} | {row['bytes']} | {row['float32_bytes']} | "
                             f"{row['float32_bytes'] / row['bytes']:.1f}x |")
            lines.append(f"| {r['model']} | **all kernels** | | {sum(x['weights'] for x in node['layers'])} | | "
                         f"**{node['bytes']}** | **{node['float32_bytes']}** | **{node['compression']:.1f}x** |")
        for f in r.get("float_layers", []):
            lines.append(f"| {r['model']} | {f['node']} ({f['op']}, float32) | | | float32 | {f['bytes']} | "
                         f"{f['bytes']} | 1.0x |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(reps, indent=1) + "\n")
    (args.out / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
