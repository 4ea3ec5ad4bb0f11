"""Emitter of the `spiking_net` operator: a fixed-point spiking network run by kernels_c/hk_snn.h.

The weights are stored in the kernels' event order (conv [C][k][k][F]; dense rows in pooled
[H][W][C] order), as int8 or int16; biases as int32. Each node gets its own static scratch
(membranes, spike bits, quantized input), sized here and named as constants in the C."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hilkit.models import snn_spec
from hilkit.models.snn_spec import NeuronLayer

from .ir import CodegenError
from .ops import register


@dataclass
class Layout:
    attrs: dict
    layers: list[NeuronLayer]
    params: dict[str, np.ndarray]       # checked integers (int64), output_scale float32
    mem_off: list[int]
    bits_off: list[int]                 # -1 for the output layer
    mem_words: int
    bits_words: int
    in_words: int
    counters: list[str]


def words(dims) -> int:
    c, h, w = dims
    return h * w * ((c + 31) // 32)


def layout(node) -> Layout:
    """Check a spiking_net node and place its scratch (cached on the node)."""
    cached = getattr(node, "_snn_layout", None)
    if cached is not None:
        return cached
    try:
        attrs = snn_spec.normalize({k: v for k, v in node.attrs.items() if k != "exp"})
        layers = snn_spec.geometry(attrs, node.in_shapes[0])
        params = snn_spec.check_values(attrs, layers, node.params)
    except snn_spec.SpecError as e:
        raise CodegenError(f"layer {node.name!r} (spiking_net): {e}") from None
    for l in layers:
        if l.kind == "conv" and l.kernel > 7:
            raise CodegenError(f"layer {node.name!r}: {l.name} kernel {l.kernel} exceeds HK_SNN_MAX_KERNEL (7)")
    in_words = words(layers[0].in_dims)
    mem_off, bits_off = [], []
    mem = 0
    bits = 2 * in_words if attrs["coding"] == "rate" else 0
    for l in layers:
        mem_off.append(mem)
        mem += l.n_out
        if l.spiking:
            bits_off.append(bits)
            bits += words(l.out_dims)
        else:
            bits_off.append(-1)
    lay = Layout(attrs, layers, params, mem_off, bits_off, mem, max(1, bits), in_words,
                 snn_spec.counter_names(attrs, layers))
    node._snn_layout = lay
    return lay


def event_weights(layer: NeuronLayer, w: np.ndarray) -> np.ndarray:
    """Model-file weights -> the kernels' event order."""
    w = np.asarray(w)
    if layer.kind == "conv":
        return w.transpose(1, 2, 3, 0)                       # [F, C, k, k] -> [C, k, k, F]
    c, ph, pw = layer.pooled
    units = w.shape[0]
    return w.reshape(units, c, ph, pw).transpose(2, 3, 1, 0).reshape(-1, units)


def _arrays(node):
    lay = layout(node)
    wtype = np.int8 if lay.attrs["weight_bits"] == 8 else np.int16
    out = []
    for l in lay.layers:
        out.append((f"{l.name}_weight", event_weights(l, lay.params[f"{l.name}.weight"]).astype(wtype)))
        out.append((f"{l.name}_bias", lay.params[f"{l.name}.bias"].astype(np.int32)))
    return out


def _macs(node) -> int:
    """Multiply-accumulates: the first layer's input current under direct coding (once per
    inference); everything else is accumulate-only (synaptic operations, counted at run time)."""
    lay = layout(node)
    return lay.layers[0].macs() if lay.attrs["coding"] == "direct" else 0


def _note(node) -> str:
    a = layout(node).attrs
    neuron = "IF" if a["neuron"] == "if" else f"LIF (leak u >> {a['leak_shift']})"
    return (f"T={a['timesteps']}, {neuron}, {a['reset']} reset, v_init {a['v_init']}, {a['coding']} coding, "
            f"int{a['weight_bits']} weights")


def _dims(d) -> str:
    return "{" + ", ".join(str(int(v)) for v in d) + "}"


def _c_float(v) -> str:
    from .emit_c import c_float
    return c_float(np.float32(v))


def net_definition(ident: str, lay: Layout, a: dict, idx: dict, reset: str) -> list[str]:
    """The C block's opening lines shared by every runner over `hk_snn_net`: the scratch buffers,
    the layer table and the net itself (`reset` is "soft" or "hard")."""
    up = ident.upper()
    wfield = "w8" if a["weight_bits"] == 8 else "w16"
    rows = []
    for l, moff, boff in zip(lay.layers, lay.mem_off, lay.bits_off):
        top, _, left, _ = l.pads
        theta = int(lay.params[f"{l.name}.threshold"][0]) if l.spiking else 0
        rows.append(
            f"        {{.kind = {'HK_SNN_CONV' if l.kind == 'conv' else 'HK_SNN_DENSE'}, .pool = {l.pool}, "
            f".in = {_dims(l.in_dims)}, .out = {_dims(l.out_dims)},\n"
            f"         .conv = {{{l.kernel}, {l.stride}, {top}, {left}}}, .w = {{.{wfield} = {ident}_{l.name}_weight}}, "
            f".bias = {ident}_{l.name}_bias,\n"
            f"         .threshold = {theta}, .mem_off = {moff}u, .bits_off = {max(boff, 0)}u, "
            f".counter = {idx.get(f'spikes_{l.name}', -1)}}},")
    net = (f"static const hk_snn_net net = {{\n"
           f"    .layers = layers, .n_layers = {len(lay.layers)}, .timesteps = {a['timesteps']},\n"
           f"    .reset = {'HK_SNN_RESET_SOFT' if reset == 'soft' else 'HK_SNN_RESET_HARD'}, "
           f".leak_shift = {a['leak_shift']}, .v_init_half = {int(a['v_init'] == 'half')},\n"
           f"    .coding = {'HK_SNN_DIRECT' if a['coding'] == 'direct' else 'HK_SNN_RATE'}, "
           f".input_bits = {a['input_bits']}, .seed = {a['seed']}u, .in = {_dims(lay.layers[0].in_dims)},\n"
           f"    .out_scale = {_c_float(lay.params['output_scale'][0])}, .counter_synops = {idx['synops']}, "
           f".counter_in = {idx.get('spikes_in', -1)}}};")
    cur0 = lay.layers[0].n_out if a["coding"] == "direct" else 1
    return [
        "{",
        f"    enum {{ {up}_MEM_WORDS = {lay.mem_words}, {up}_BITS_WORDS = {lay.bits_words}, "
        f"{up}_Q_WORDS = {lay.layers[0].n_in}, {up}_CUR0_WORDS = {cur0} }};",
        f"    static int32_t mem[{up}_MEM_WORDS];",
        f"    static uint32_t bits[{up}_BITS_WORDS];",
        f"    static int32_t q[{up}_Q_WORDS];",
        f"    static int32_t cur0[{up}_CUR0_WORDS];",
        f"    static const hk_snn_layer layers[{len(lay.layers)}] = {{",
        *rows,
        "    };",
        "    " + net.replace("\n", "\n    "),
    ]


@register("spiking_net", ["hk_snn.h"], arrays=_arrays, macs=_macs, note=_note)
def _spiking_net(e, n) -> str:
    lay = layout(n)
    a = lay.attrs
    counters = e.counters(n, lay.counters)
    idx = {name: i for i, name in enumerate(lay.counters)}
    return "\n".join([
        *net_definition(e.ident(n), lay, a, idx, a["reset"]),
        "    const hk_snn_scratch scratch = {mem, bits, q, cur0};",
        f"    /* counters: {', '.join(lay.counters)} */",
        f"    if (hk_snn_run(&net, {e.ptr(n.inputs[0])}, {e.ptr(n.name)}, scratch, {counters}) != 0) {{",
        "        return 1;",
        "    }",
        "}",
    ])
