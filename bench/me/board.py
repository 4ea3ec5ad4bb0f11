"""The ME-LIF digits network on boards under QEMU (docs/me-neuron.md): spike agreement with the
reference for the fixed fire seed, instructions per inference against the deterministic LIF
network with the same weights (the cost of the stochastic fire rule per neuron update), and the
energy report (ME devices against a digital CMOS LIF estimate).

    .venv/bin/python bench/me/board.py [--boards mps2-an386 pico] [--samples 360]

Trains digits-snn-me (the recipe) into out/me-bench/, compiles it and its LIF twin for each board,
runs the first --samples test digits, writes bench/me/results/board.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = Path("out/me-bench")


def _run(path: Path, board_id: str, x: np.ndarray):
    from hilkit.host import protocol, runner
    from hilkit.host.compile import compile_model
    from hilkit.models import modelfile

    c = compile_model(path, board_id, WORK / f"{path.stem}-{board_id}")
    extras, insns, outs = [], [], []
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel())
            extras.append(r.extra)
            outs.append(r.outputs)
            insns += target.instruction_counts() or []
    return c, modelfile.load(c.out_dir / "model.npz"), extras, np.asarray(insns, np.float64), np.stack(outs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["mps2-an386", "pico"])
    ap.add_argument("--samples", type=int, default=360)
    a = ap.parse_args(argv)

    from hilkit.host.me_report import me_metrics
    from hilkit.host.snn_report import snn_metrics
    from hilkit.models import me_snn, modelfile, recipes, reference
    from hilkit.models.snn_convert import build_graph
    from hilkit.models.snn_recipes import digits_data

    WORK.mkdir(parents=True, exist_ok=True)
    me_path = WORK / "digits-snn-me.npz"
    summary = recipes.RECIPES["digits-snn-me"](me_path)
    # the deterministic LIF network with the same weights (what the tables replace)
    (la, lp), _, _ = me_snn.build(0)
    lif_path = WORK / "digits-snn-lif.npz"
    modelfile.save(lif_path, *build_graph(la, lp, (1, 8, 8), name="digits-snn-lif"))
    _, _, X, y = digits_data("cnn")
    x, y = X[:a.samples], y[:a.samples]
    neuron_steps = la["timesteps"] * (8 * 8 * 8 + 16 * 4 * 4)
    out = {"recipe": summary, "samples": int(len(x)), "neuron_steps_per_inference": neuron_steps, "boards": {}}
    for board_id in a.boards:
        t0 = time.perf_counter()
        c, m, extras, insns, outs = _run(me_path, board_id, x)
        met = me_metrics(c.manifest, m, x, extras, instructions=insns.tolist() or None)
        ref = reference.forward(m, x)
        c2, m2, extras2, insns2, outs2 = _run(lif_path, board_id, x)
        met2 = snn_metrics(c2.manifest, m2, x, extras2, instructions=insns2.tolist() or None)
        row = {"me": {k: met[k] for k in ("spike_agreement", "spike_mismatches", "spikes_per_inference",
                                          "synops_per_inference", "energy_op_uj", "me_energy")},
               "me_accuracy": float((outs.argmax(1) == y).mean()),
               "me_top1_agreement": float((outs.argmax(1) == ref.argmax(1)).mean()),
               "me_max_abs_diff": float(np.abs(outs - ref).max()),
               "lif": {k: met2[k] for k in ("spike_agreement", "spikes_per_inference", "synops_per_inference")},
               "lif_accuracy": float((outs2.argmax(1) == y).mean())}
        if len(insns) and len(insns2):
            fit = met2["instructions_vs_synops"]
            extra = insns.mean() - insns2.mean() - fit["slope"] * (met["synops_per_inference"] - met2["synops_per_inference"])
            row.update({"me_instructions_per_inference": float(insns.mean()),
                        "lif_instructions_per_inference": float(insns2.mean()),
                        "lif_instructions_vs_synops": fit,
                        "stochastic_fire_extra_instructions_per_neuron_update": float(extra / neuron_steps)})
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out["boards"][board_id] = row
        print(board_id, json.dumps(row, indent=1), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "board.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
