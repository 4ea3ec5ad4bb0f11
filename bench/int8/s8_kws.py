"""Instructions per MAC of the portable int8 kernels on the MLPerf Tiny KWS (DS-CNN) layer shapes
(exact counts under QEMU), every output checked byte for byte against hilkit.ops.int8.

    .venv/bin/python bench/int8/s8_kws.py [--board mps2-an386] [--out bench/int8/results]

Each layer runs twice: the generic call (shapes read at run time from the request) and a compiled
case (the kernel called with literal shapes, as generated model code calls it). MACs are output
size x kernel taps x input channels per group, padding taps included (as MLPerf Tiny counts them).
Writes kernels-<board>.json and kernels-<board>.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import s8bench


def kws_layers(rng: np.random.Generator) -> list[tuple[s8bench.Request, np.ndarray]]:
    """The four DS-CNN layer shapes that carry KWS's MACs, with random int8 data and realistic
    per-channel multipliers: (request, numpy reference output)."""
    from hilkit.ops import int8

    def conv_q(n):
        return int8.conv_params(0.05, rng.uniform(0.002, 0.02, n), 0.08, -128, "relu")

    out = []
    # CONV 10x4, stride 2, SAME, 1 -> 64 on 49x10 (the first layer)
    x = rng.integers(-128, 128, (1, 49, 10, 1), dtype=np.int8)
    w = rng.integers(-127, 128, (64, 10, 4, 1), dtype=np.int8)
    b = rng.integers(-2000, 2000, 64).astype(np.int32)
    p = conv_q(64)
    kw = {"stride": (2, 2), "padding": "same", "in_zp": -5, "out_zp": -128, "mult": p["mult"], "shift": p["shift"],
              "act_min": p["act_min"], "act_max": p["act_max"]}
    r = s8bench.conv2d(x, w, b, **kw)
    r.label = "conv 10x4 s2 1->64 on 49x10"
    out.append((r, int8.conv2d(x, w, b, **kw)))
    # DEPTHWISE 3x3, stride 1, SAME on 25x5x64
    x = rng.integers(-128, 128, (1, 25, 5, 64), dtype=np.int8)
    w = rng.integers(-127, 128, (1, 3, 3, 64), dtype=np.int8)
    p = conv_q(64)
    kw = {"stride": (1, 1), "padding": "same", "in_zp": -128, "out_zp": -128, "mult": p["mult"], "shift": p["shift"],
              "act_min": p["act_min"], "act_max": p["act_max"]}
    r = s8bench.depthwise_conv2d(x, w, b, **kw)
    r.label = "depthwise 3x3 on 25x5x64"
    out.append((r, int8.depthwise_conv2d(x, w, b, **kw)))
    # CONV 1x1 64 -> 64 on 25x5
    w = rng.integers(-127, 128, (64, 1, 1, 64), dtype=np.int8)
    p = conv_q(64)
    kw = {"stride": (1, 1), "padding": "same", "in_zp": -128, "out_zp": -128, "mult": p["mult"], "shift": p["shift"],
              "act_min": p["act_min"], "act_max": p["act_max"]}
    r = s8bench.conv2d(x, w, b, **kw)
    r.label = "conv 1x1 64->64 on 25x5"
    out.append((r, int8.conv2d(x, w, b, **kw)))
    # FULLY_CONNECTED 64 -> 12, per-tensor (as in the reference model)
    x = rng.integers(-128, 128, (1, 64), dtype=np.int8)
    w = rng.integers(-127, 128, (12, 64), dtype=np.int8)
    p = int8.fc_params(0.05, [0.004], 0.1, 7)
    kw = {"in_zp": -128, "out_zp": 7, "mult": p["mult"], "shift": p["shift"]}
    r = s8bench.fully_connected(x, w, b[:12], **kw)
    r.label = "fc 64->12"
    out.append((r, int8.fully_connected(x, w, b[:12], **kw)))
    return out


def run(board: str, workdir: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    layers = kws_layers(rng)
    rows = []
    t0 = time.monotonic()
    with s8bench.S8Bench(board, workdir, cases=[r for r, _ in layers]) as sb:
        for i, (req, ref) in enumerate(layers):
            y_gen, n_gen = sb.run(req)
            y_case, n_case = sb.run(req, case=i)
            bad = int(np.sum(y_gen != ref)) + int(np.sum(y_case != ref))
            rows.append({"layer": req.label, "macs": req.macs, "insns_generic": n_gen, "insns_compiled": n_case,
                             "insns_per_mac_generic": None if n_gen is None else round(n_gen / req.macs, 3),
                             "insns_per_mac_compiled": None if n_case is None else round(n_case / req.macs, 3),
                             "bytes_differing": bad})
    return {"board": board, "seed": seed, "seconds": round(time.monotonic() - t0, 1), "layers": rows}


def markdown(res: dict) -> str:
    lines = [f"# int8 portable kernels on {res['board']}: MLPerf Tiny KWS layer shapes", "",
             ("Exact guest instructions per kernel call (QEMU plugin), generic call / compiled case "
             "(literal shapes). Outputs compared byte for byte with hilkit.ops.int8."), "",
             "| layer | MACs | insns generic | insns/MAC | insns compiled | insns/MAC | bytes differing |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["layers"]:
        lines.append(f"| {r['layer']} | {r['macs']} | {r['insns_generic']} | {r['insns_per_mac_generic']} | "
                     f"{r['insns_compiled']} | {r['insns_per_mac_compiled']} | {r['bytes_differing']} |")
    lines += ["", "Command: `.venv/bin/python bench/int8/s8_kws.py --board " + res["board"] + "`", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="s8bench-") as work:
        res = run(a.board, Path(work), a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"kernels-{a.board}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    (a.out / f"kernels-{a.board}.md").write_text(md)
    print(md)
    return 0 if all(r["bytes_differing"] == 0 for r in res["layers"]) else 1


if __name__ == "__main__":
    sys.exit(main())
