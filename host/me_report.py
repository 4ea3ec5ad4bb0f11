"""The ME-neuron keys of `hilkit run --json` (docs/me-neuron.md).

`me_metrics` compares the spike and synaptic-operation counters a board returned with every
inference of an `me_spiking_net` model with the integer reference's (`spike_agreement`), and
estimates the neurons' energy two ways: ME-LIF devices (switching, reset, reads, leak; from the
device model) and digital CMOS LIF neurons at 45 nm (membrane SRAM traffic and integer ops per
neuron and step). The synapses' energy (synaptic operations x 0.9 pJ, as host/snn_report.py) is
the same for both and reported beside them."""
from __future__ import annotations

import numpy as np

from .snn_report import PJ_PER_MAC, PJ_PER_SYNOP, compare_counters, linear_fit


def me_nodes(loaded_model) -> list[dict]:
    return [la for la in loaded_model.layers if la["op"] == "me_spiking_net"]


def neuron_energy(loaded_model, x, *, dev=None, model=None) -> dict:
    """Per-inference neuron energy (J, mean over x) of the model's me_spiking_net nodes, from the
    integer reference: spikes, neuron-steps and the membrane's sum of squares (the leak)."""
    from hilkit.models import me_neuron as M
    from hilkit.models import me_snn, snn_spec
    from hilkit.models.reference import forward_trace

    dev = M.NOMINAL if dev is None else dev
    model = M.FITTED if model is None else model
    e = M.energy(dev, model)
    v50 = model.v50(dev)
    trace = forward_trace(loaded_model, x)
    spikes = steps = leak = 0.0
    for la in me_nodes(loaded_model):
        shape = loaded_model.shapes[la["inputs"][0]]
        p = loaded_model.params(la)
        res = me_snn.simulate(la["attrs"], p, trace[la["inputs"][0]], shape)
        a = me_snn.normalize(la["attrs"])
        for l in snn_spec.geometry(a, shape):
            if not l.spiking:
                continue
            theta = float(p[f"{l.name}.threshold"][0])
            spikes += float(res.counters[f"spikes_{l.name}"].mean())
            steps += a["timesteps"] * l.n_out
            leak += float(res.sum_u2[l.name].mean()) * (v50 / theta) ** 2 * e.leak_per_v2
    me = {"switch_j": spikes * e.charge, "reset_j": spikes * e.reset, "read_j": steps * e.read, "leak_j": leak}
    me["total_j"] = sum(me.values())
    cmos = {"update_j": steps * M.CMOS_LIF_STEP_J, "reset_j": spikes * M.CMOS_LIF_SPIKE_J}
    cmos["total_j"] = sum(cmos.values())
    cmos["total_ops_only_j"] = steps * M.CMOS_LIF_STEP_OPS_J + spikes * M.CMOS_LIF_SPIKE_J
    return {"spikes_per_inference": spikes, "neuron_steps_per_inference": steps, "me_lif": me, "cmos_lif": cmos,
            "cmos_over_me": cmos["total_j"] / me["total_j"] if me["total_j"] > 0 else None,
            "cmos_ops_only_over_me": cmos["total_ops_only_j"] / me["total_j"] if me["total_j"] > 0 else None,
            "me_per_spike_j": e.per_spike, "me_read_per_step_j": e.read,
            "cmos_per_neuron_step_j": M.CMOS_LIF_STEP_J,
            "source": "ME: device model (me_neuron.energy: C V50^2 switch, C V_reset^2 reset, MTJ read every step, "
                      "V^2/R leak from the reference membranes); CMOS: digital LIF at 45 nm (Horowitz table: "
                      "2 SRAM accesses x 10 pJ + 3 int32 adds per neuron-step; ops_only: the adds alone, a lower bound)"}


def me_metrics(manifest: dict, loaded_model, x_test, board_extras, *, instructions=None) -> dict:
    """The ME keys for the run report; {} for a model without me_spiking_net nodes.

    manifest      the compiled directory's hilkit.json (its "extra" names the counters)
    loaded_model  the LoadedModel that was compiled
    x_test        the inputs that were sent, [N, *input_shape]
    board_extras  the `extra` u32 list of each of the N INFER replies
    instructions  optional per-inference instruction counts (QEMU)"""
    from hilkit.models import me_snn, snn_spec

    nodes = me_nodes(loaded_model)
    if not nodes:
        return {}
    ref = me_snn.model_counters(loaded_model, x_test)
    board, col, same = compare_counters(manifest, board_extras, len(x_test), ref)
    spike_keys = [k for k in ref if k.rsplit(".", 1)[1].startswith("spikes_l")]
    synop_keys = [k for k in ref if k.endswith(".synops")]
    spikes = board[:, [col[k] for k in spike_keys]].sum(axis=1)
    synops = board[:, [col[k] for k in synop_keys]].sum(axis=1)
    first_macs, timesteps = 0, []
    for la in nodes:
        a = me_snn.normalize(la["attrs"])
        timesteps.append(a["timesteps"])
        if a["coding"] == "direct":
            first_macs += snn_spec.geometry(a, loaded_model.shapes[la["inputs"][0]])[0].macs()
    syn_j = float(synops.mean()) * PJ_PER_SYNOP * 1e-12 + first_macs * PJ_PER_MAC * 1e-12
    neurons = neuron_energy(loaded_model, x_test)
    out = {
        "timesteps": timesteps[0] if len(timesteps) == 1 else timesteps,
        "spike_agreement": float(same.mean()),
        "spike_mismatches": [int(i) for i in np.flatnonzero(~same)[:20]],
        "spikes_per_inference": float(spikes.mean()),
        "synops_per_inference": float(synops.mean()),
        "energy_op_uj": syn_j * 1e6,
        "energy_op_source": "op-level 45 nm: synaptic ops x 0.9 pJ + first-layer MACs x 4.6 pJ (direct input)",
        "me_energy": {
            "neurons": neurons,
            "synapses_j": syn_j,
            "total_me_lif_uj": (neurons["me_lif"]["total_j"] + syn_j) * 1e6,
            "total_cmos_lif_uj": (neurons["cmos_lif"]["total_j"] + syn_j) * 1e6,
        },
    }
    if instructions is not None and len(instructions) == len(synops):
        out["instructions_vs_synops"] = linear_fit(synops, instructions)
    return out
