"""Emitter of the `me_spiking_net` operator: a spiking network of ME-LIF neurons run by
kernels_c/hk_me.h (docs/me-neuron.md).

The network part (weights in event order, biases, scratch, the hk_snn_net literal) is laid out by
ops_snn exactly as for a spiking_net; this module adds one uint32 switching-probability table per
spiking layer and calls hk_me_run instead of hk_snn_run."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from hilkit.models import me_snn, snn_spec

from . import ops_snn
from .ir import CodegenError
from .ops import register


def _base(node):
    """The spiking_net view of the node (what ops_snn.layout reads), cached on the node."""
    cached = getattr(node, "_me_base", None)
    if cached is not None:
        return cached
    try:
        a = me_snn.normalize({k: v for k, v in node.attrs.items() if k != "exp"})
        layers = snn_spec.geometry(a, node.in_shapes[0])
        params = me_snn.check_values(a, layers, node.params)
    except snn_spec.SpecError as e:
        raise CodegenError(f"layer {node.name!r} (me_spiking_net): {e}") from None
    base = SimpleNamespace(name=node.name, in_shapes=node.in_shapes, attrs=me_snn.base_attrs(a),
                           params={k: v for k, v in node.params.items()
                                   if not k.endswith((".fire_table", ".table_shift"))})
    node._me_base = base
    node._me_attrs, node._me_params = a, params
    ops_snn.layout(base)
    return base


def _arrays(node):
    base = _base(node)
    lay = ops_snn.layout(base)
    out = ops_snn._arrays(base)
    for l in lay.layers:
        if l.spiking:
            out.append((f"{l.name}_fire_table", node._me_params[f"{l.name}.fire_table"].astype(np.uint32)))
    return out


def _macs(node) -> int:
    return ops_snn._macs(_base(node))


def _note(node) -> str:
    _base(node)
    a = node._me_attrs
    return (ops_snn._note(_base(node)) + f", ME-LIF stochastic firing ({a['table_bins']}-bin tables, "
            f"fire_seed {a['fire_seed']})")


@register("me_spiking_net", ["hk_snn.h", "hk_me.h"], arrays=_arrays, macs=_macs, note=_note)
def _me_spiking_net(e, n) -> str:
    base = _base(n)
    lay = ops_snn.layout(base)
    a, params = n._me_attrs, n._me_params
    ident = e.ident(n)
    counters = e.counters(n, lay.counters)
    idx = {name: i for i, name in enumerate(lay.counters)}
    fires = []
    for l in lay.layers:
        if l.spiking:
            shift = int(params[f"{l.name}.table_shift"][0])
            fires.append(f"        {{{ident}_{l.name}_fire_table, {shift}, {a['table_bins']}}},")
        else:
            fires.append("        {NULL, 0, 0},")
    if a["leak_shift"] < 1:
        raise CodegenError(f"layer {n.name!r}: ME neurons need leak_shift >= 1")
    return "\n".join([
        *ops_snn.net_definition(ident, lay, a, idx, "hard"),
        f"    static const hk_me_fire fire[{len(lay.layers)}] = {{",
        *fires,
        "    };",
        f"    static const hk_me_net me = {{&net, fire, {a['fire_seed']}u}};",
        "    const hk_snn_scratch scratch = {mem, bits, q, cur0};",
        f"    /* counters: {', '.join(lay.counters)} */",
        f"    if (hk_me_run(&me, {e.ptr(n.inputs[0])}, {e.ptr(n.name)}, scratch, {counters}) != 0) {{",
        "        return 1;",
        "    }",
        "}",
    ])
