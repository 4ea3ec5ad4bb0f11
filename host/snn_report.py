"""The spiking-network keys of `hilkit run --json` (docs/snn.md).

`snn_metrics` compares the counters a board returned with every inference (spikes per layer and
synaptic operations of each `spiking_net` node, named in the manifest's "extra") with the integer
reference's, and turns them into op-level energy with the 45 nm table (docs/references.md)."""
from __future__ import annotations

import numpy as np

# Horowitz, ISSCC 2014, 45 nm: an fp32 add (a synaptic accumulate, as the SNN papers count it) and
# an fp32 multiply-accumulate.
PJ_PER_SYNOP = 0.9
PJ_PER_MAC = 4.6


def spiking_nodes(loaded_model) -> list[dict]:
    return [layer for layer in loaded_model.layers if layer["op"] == "spiking_net"]


def _geometry(loaded_model, layer):
    from hilkit.models import snn_spec
    attrs = snn_spec.normalize({k: v for k, v in layer["attrs"].items() if k != "exp"})
    return attrs, snn_spec.geometry(attrs, loaded_model.shapes[layer["inputs"][0]])


def linear_fit(x, y) -> dict:
    """Least-squares y = slope x + intercept, with R^2."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": None, "intercept": None, "r2": None, "n": int(len(x))}
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "n": int(len(x))}


def compare_counters(manifest: dict, board_extras, n_samples: int, ref: dict):
    """Line the board's per-inference counters up with the reference's.

    Returns (board counters [N, n_extra] int64, {counter name: column}, per-sample bool: every
    counter the reference computes equals the board's). Raises ValueError when the rows or the
    names do not match the compiled manifest."""
    names = list(manifest.get("extra") or [])
    board = np.asarray([list(e) for e in board_extras], dtype=np.int64).reshape(len(board_extras), -1)
    if len(board) != n_samples:
        raise ValueError(f"{len(board)} counter rows for {n_samples} samples")
    if board.shape[1] != len(names):
        raise ValueError(f"the board returned {board.shape[1]} counters per inference, the manifest names {len(names)}")
    missing = [k for k in ref if k not in names]
    if missing:
        raise ValueError(f"the manifest has no counter {missing[0]!r}: compile the model again")
    col = {n: i for i, n in enumerate(names)}
    same = (board[:, [col[k] for k in ref]] == np.stack([ref[k] for k in ref], axis=1)).all(axis=1)
    return board, col, same


def snn_metrics(manifest: dict, loaded_model, x_test, board_extras, *, instructions=None) -> dict:
    """The SNN keys for the run report; {} for a model without spiking_net nodes.

    manifest      the compiled directory's hilkit.json (its "extra" names the counters)
    loaded_model  the LoadedModel that was compiled
    x_test        the inputs that were sent, [N, *input_shape]
    board_extras  the `extra` u32 list of each of the N INFER replies
    instructions  optional per-inference instruction counts (QEMU): adds a linear fit of
                  instructions against synaptic operations
    """
    from hilkit.models import snn

    nodes = spiking_nodes(loaded_model)
    if not nodes:
        return {}
    ref = snn.model_counters(loaded_model, x_test)
    board, col, same = compare_counters(manifest, board_extras, len(x_test), ref)

    spike_keys = [k for k in ref if k.rsplit(".", 1)[1].startswith("spikes_l")]
    synop_keys = [k for k in ref if k.endswith(".synops")]
    spikes = board[:, [col[k] for k in spike_keys]].sum(axis=1)
    synops = board[:, [col[k] for k in synop_keys]].sum(axis=1)

    first_macs, ann_macs, timesteps = 0, 0, []
    for layer in nodes:
        attrs, geo = _geometry(loaded_model, layer)
        timesteps.append(attrs["timesteps"])
        if attrs["coding"] == "direct":
            first_macs += geo[0].macs()
        ann_macs += sum(l.macs() for l in geo)
    energy = (float(synops.mean()) * PJ_PER_SYNOP + first_macs * PJ_PER_MAC) * 1e-6
    out = {
        "timesteps": timesteps[0] if len(timesteps) == 1 else timesteps,
        "spikes_per_inference": float(spikes.mean()),
        "synops_per_inference": float(synops.mean()),
        "energy_op_uj": energy,
        "spike_agreement": float(same.mean()),
        "energy_op_source": "op-level 45 nm: synaptic ops x 0.9 pJ + first-layer MACs x 4.6 pJ (direct input)",
        "spikes_per_layer": {k: float(board[:, col[k]].mean()) for k in spike_keys},
        "first_layer_macs": int(first_macs),
        "ann_macs": int(ann_macs),
        "energy_op_uj_ann": ann_macs * PJ_PER_MAC * 1e-6,
        "spike_mismatches": [int(i) for i in np.flatnonzero(~same)[:20]],
    }
    if instructions is not None and len(instructions) == len(synops):
        out["instructions_vs_synops"] = linear_fit(synops, instructions)
    return out
