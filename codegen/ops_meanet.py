"""Emitters of the MEANet ops (docs/meanet.md): `meanet_gate` and `meanet_merge`.

The gate is where the edge model branches: its C block returns from hk_model_infer early, with the
exit's distribution as the answer (main tier) or HK_MODEL_OFFLOAD (cloud tier, the firmware sends
an OFFLOAD reply carrying the input); only the extension tier goes on to the nodes after it, which
end in the merge, the graph output. So the graph must list every node of the main block before
the gate and the extension block after it (hilkit.models.meanet.edge_graph does)."""
from __future__ import annotations

import numpy as np

from hilkit.models.meanet import COUNTERS, parse_hard

from .ir import CodegenError
from .ops import register


def _hard(n) -> tuple[int, ...]:
    return parse_hard(n.attrs["hard"], n.out_shape[0])


def _gate_arrays(n):
    mask = np.zeros(n.out_shape[0], np.uint8)
    mask[list(_hard(n))] = 1
    return [("threshold", np.asarray(n.params["threshold"], np.float32)), ("hard", mask)]


def _gate_note(n) -> str:
    crit = n.attrs.get("criterion", "entropy")
    rel = ">" if crit == "entropy" else "<"
    thr = float(np.asarray(n.params["threshold"]).ravel()[0])
    return f"cloud if {crit} {rel} {thr:.9g}, hard classes {{{n.attrs['hard']}}}"


@register("meanet_gate", ["hk_meanet.h"], arrays=_gate_arrays, note=_gate_note)
def _gate(e, n) -> str:
    out = e.g.node(e.g.output)
    if out.op != "meanet_merge" or out.inputs[0] != n.name:
        raise CodegenError(f"layer {n.name!r}: a meanet_gate needs the graph output to be a meanet_merge of it")
    ident = e.ident(n)
    crit = "HK_MEANET_CONFIDENCE" if n.attrs.get("criterion") == "confidence" else "HK_MEANET_ENTROPY"
    counters = e.counters(n, list(COUNTERS))
    size = n.out_size
    return (f"{{\n"
            f"    const int tier = hk_meanet_gate_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {size}, {ident}_hard, "
            f"{ident}_threshold[0], {crit}, {counters});\n"
            f"    if (tier == HK_MEANET_CLOUD) {{\n"
            f"        return HK_MODEL_OFFLOAD; /* the firmware sends the input to the cloud */\n"
            f"    }}\n"
            f"    if (tier == HK_MEANET_MAIN) {{\n"
            f"        for (int i = 0; i < {size}; i++) {{\n"
            f"            ({e.ptr(out.name)})[i] = ({e.ptr(n.name)})[i];\n"
            f"        }}\n"
            f"        return 0;\n"
            f"    }}\n"
            f"}}")


def _merge_arrays(n):
    return [("hard", np.asarray(_hard(n), np.uint16))]


@register("meanet_merge", ["hk_meanet.h"], arrays=_merge_arrays, note=lambda n: f"hard classes {{{n.attrs['hard']}}}")
def _merge(e, n) -> str:
    hard = _hard(n)
    return (f"hk_meanet_merge_f32({e.ptr(n.inputs[0])}, {e.ptr(n.inputs[1])}, {e.ident(n)}_hard, {len(hard)}, "
            f"{n.out_size}, {e.ptr(n.name)});")
