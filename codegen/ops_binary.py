"""Emitter of the `binary_snn` operator (models/stdp.py, docs/stdp.md), run by kernels_c/hk_binconv.h.

Binary kernels (kernel_bits 1) are stored one bit per weight, packed per filter in the order the
kernel gathers a receptive field ((ky * k + kx) * c_in + c); int8 kernels (kernel_bits 8) in the
layout of the int8 kernel chosen by INT8_KERNEL. The time loop is written out in model.c with one
call per layer, so every layer's shape is a compile-time constant of its (inlined) kernel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hilkit.models import stdp
from hilkit.models.stdp import ConvLayer

from .ir import CodegenError
from .ops import register

# Which int8 kernel runs kernel_bits 8 layers: "event" (each input spike adds its weight row) or
# "dense" (unpacked window, int8 dot product per filter). A module setting, like the sparse/dense
# crossover in passes.py, so a bench can compile the same model both ways.
INT8_KERNEL = "event"
INT8_KERNELS = {"event": "s8_event", "dense": "s8_dense"}
# A binary layer runs bit-sliced (each active input adds its F-bit filter mask into a bit-sliced
# counter) when F is 8, 16 or 32 and its receptive field spans at least this many 32-bit words,
# else AND + popcount per filter. Measured per layer (docs/stdp.md): a 1-word window is faster on
# AND + popcount everywhere; 5- and 9-word windows are 10-24 % faster sliced on Cortex-M4, and on
# Cortex-M0+ (ctz by de Bruijn multiply) from 7 % slower to 31 % faster depending on the spike
# rate. 0: never sliced.
SLICED_MIN_WORDS = 2


def words(c: int) -> int:
    return (c + 31) // 32


@dataclass
class Layout:
    attrs: dict
    layers: list[ConvLayer]
    params: dict[str, np.ndarray]       # checked integers (int64)
    in_dims: tuple[int, int, int]
    in_words: int
    bits_off: list[int]                 # each layer's spike map in the bits scratch
    mem_off: list[int]
    bits_words: int
    mem_words: int
    count_words: int
    counters: list[str]

    def src_offset(self, map_index: int) -> int:
        """Map 0 is the input's positive spike plane (word 0); map i + 1 is layer i's."""
        return 0 if map_index == 0 else self.bits_off[map_index - 1]


def layout(node) -> Layout:
    """Check a binary_snn node and place its scratch (cached on the node)."""
    cached = getattr(node, "_binconv_layout", None)
    if cached is not None:
        return cached
    try:
        attrs = stdp.normalize({k: v for k, v in node.attrs.items() if k != "exp"})
        layers = stdp.geometry(attrs, node.in_shapes[0])
        params = stdp.check_values(attrs, layers, node.params)
    except stdp.SpecError as e:
        raise CodegenError(f"layer {node.name!r} (binary_snn): {e}") from None
    c, h, w = (int(d) for d in node.in_shapes[0])
    in_words = h * w * words(c)
    bits = 2 * in_words                                  # positive and negative input planes
    mem, bits_off, mem_off = 0, [], []
    for l in layers:
        bits_off.append(bits)
        bits += h * w * words(l.filters)
        mem_off.append(mem)
        mem += h * w * l.filters
    f, ph, pw = stdp.output_shape(attrs, layers)
    lay = Layout(attrs, layers, params, (c, h, w), in_words, bits_off, mem_off, bits, mem, f * ph * pw,
                 stdp.counter_names(layers))
    node._binconv_layout = lay
    return lay


def pack_kernels(weight: np.ndarray) -> np.ndarray:
    """[F, C, k, k] of +/-1 -> uint32 [F, words(k*k*C)]: bit (ky*k + kx)*C + c of a filter is set for +1."""
    w = np.asarray(weight)
    f = w.shape[0]
    bits = (w.transpose(0, 2, 3, 1).reshape(f, -1) > 0).astype(np.uint64)
    nw = words(bits.shape[1])
    padded = np.zeros((f, nw * 32), np.uint64)
    padded[:, :bits.shape[1]] = bits
    return (padded.reshape(f, nw, 32) << np.arange(32, dtype=np.uint64)).sum(axis=2).astype(np.uint32)


def pack_sliced(weight: np.ndarray) -> np.ndarray:
    """[F, C, k, k] of +/-1, F in {8, 16, 32} -> one F-bit mask per synapse d = (ky*k + kx)*C + c
    (uint8/16/32; bit f set where filter f has +1)."""
    w = np.asarray(weight)
    f = w.shape[0]
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}.get(f)
    if dtype is None:
        raise CodegenError(f"a bit-sliced layer needs 8, 16 or 32 filters, not {f}")
    bits = (w.transpose(2, 3, 1, 0).reshape(-1, f) > 0).astype(np.uint64)     # [(ky, kx, c), f]
    return (bits << np.arange(f, dtype=np.uint64)).sum(axis=1).astype(dtype)


def sliced(l: ConvLayer) -> bool:
    """Whether this binary layer runs on the bit-sliced kernel (see SLICED_MIN_WORDS)."""
    return SLICED_MIN_WORDS > 0 and l.filters in (8, 16, 32) and words(l.patch_bits) >= SLICED_MIN_WORDS


def _mask_field(l: ConvLayer) -> str:
    """The hk_binconv_layer field that holds a binary layer's kernels."""
    return {8: "wm8", 16: "wm16"}.get(l.filters, "wbits") if sliced(l) else "wbits"


def int8_kernels(weight: np.ndarray, kind: str) -> np.ndarray:
    """[F, C, k, k] -> the int8 kernel's layout: event [k*k][C][F], dense [F][k*k*C]."""
    w = np.asarray(weight)
    taps = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)          # [F, (ky, kx, c)]
    return (taps.T if kind == "event" else taps).astype(np.int8)


def kernel_kind(attrs: dict) -> str:
    if attrs["kernel_bits"] == 1:
        return "b1"
    if INT8_KERNEL not in INT8_KERNELS:
        raise CodegenError(f"ops_binary.INT8_KERNEL must be one of {', '.join(INT8_KERNELS)}, not {INT8_KERNEL!r}")
    return INT8_KERNELS[INT8_KERNEL]


def _arrays(node):
    lay = layout(node)
    kind = kernel_kind(lay.attrs)
    out = []
    for l in lay.layers:
        w = lay.params[f"{l.name}.weight"]
        if kind == "b1":
            out.append((f"{l.name}_{_mask_field(l)}", (pack_sliced(w) if sliced(l) else pack_kernels(w)).ravel()))
        else:
            out.append((f"{l.name}_w8", int8_kernels(w, INT8_KERNEL).ravel()))
        out.append((f"{l.name}_threshold", lay.params[f"{l.name}.threshold"].astype(np.int32)))
    return out


def kernel_bytes(node) -> dict:
    """Kernel memory of the node as generated (packed words or int8) against float32 kernels."""
    lay = layout(node)
    rows = []
    for l, (name, arr) in zip(lay.layers, [a for a in _arrays(node) if not a[0].endswith("threshold")]):
        rows.append({"layer": l.name, "shape": list(l.weight_shape()), "weights": int(np.prod(l.weight_shape())),
                     "bytes": int(arr.nbytes), "float32_bytes": 4 * int(np.prod(l.weight_shape()))})
    total = sum(r["bytes"] for r in rows)
    f32 = sum(r["float32_bytes"] for r in rows)
    return {"layers": rows, "bytes": total, "float32_bytes": f32, "compression": f32 / total}


def _note(node) -> str:
    lay = layout(node)
    a = lay.attrs
    neuron = "IF" if a["leak_shift"] == 0 else f"LIF (leak u >> {a['leak_shift']})"
    kern = "binary kernels, bit-packed" if a["kernel_bits"] == 1 else f"int8 kernels ({INT8_KERNEL})"
    res = sum(1 for l in lay.layers if l.c_res)
    return (f"T={a['timesteps']}, {neuron}, {a['reset']} reset, {kern}, {len(lay.layers)} conv layers"
            f"{f' ({res} residual)' if res else ''}, sum-pool {a['pool']}")


def _dims(d) -> str:
    return "{" + ", ".join(str(int(v)) for v in d) + "}"


@register("binary_snn", ["hk_snn.h", "hk_binconv.h"], arrays=_arrays, note=_note)
def _binary_snn(e, n) -> str:
    lay = layout(n)
    a = lay.attrs
    ident = e.ident(n)
    up = ident.upper()
    kind = kernel_kind(a)
    first = e.counters(n, lay.counters)
    rows = []
    for l, boff, moff in zip(lay.layers, lay.bits_off, lay.mem_off):
        src_res = lay.src_offset(l.src_res) if l.src_res >= 0 else 0
        wfield = (f".sliced = {int(sliced(l))}, .{_mask_field(l)} = {ident}_{l.name}_{_mask_field(l)}" if kind == "b1"
                  else f".w8 = {ident}_{l.name}_w8")
        rows.append(f"        {{.filters = {l.filters}, .kernel = {l.kernel}, .c_direct = {l.c_direct}, "
                    f".c_res = {l.c_res}, .src_direct = {lay.src_offset(l.src_direct)}u, .src_res = {src_res}u,\n"
                    f"         {wfield}, .threshold = {ident}_{l.name}_threshold, "
                    f".mem_off = {moff}u, .bits_off = {boff}u}},")
    steps = []
    last = len(lay.layers) - 1
    for i, l in enumerate(lay.layers):
        src = "input" if l.src_direct == 0 else f"l{l.src_direct - 1}"
        if l.src_res >= 0:
            src += " + " + ("input" if l.src_res == 0 else f"l{l.src_res - 1}") + " (residual)"
        fn = "b1s" if kind == "b1" and sliced(l) else kind
        steps.append(f"        /* {l.name}: {l.filters} filters {l.kernel}x{l.kernel} over {src}, "
                     f"{l.patch_bits} synapses each */\n"
                     f"        cnt[{1 + i}] += hk_binconv_step_{fn}(&net, &layers[{i}], sc, "
                     f"{'sc.counts' if i == last else 'NULL'}, &synops);")
    c, h, w = lay.in_dims
    kind_enum = {"b1": "HK_BINCONV_B1", "s8_event": "HK_BINCONV_S8_EVENT", "s8_dense": "HK_BINCONV_S8_DENSE"}[kind]
    net = (f"static const hk_binconv_net net = {{\n"
           f"    .layers = layers, .n_layers = {len(lay.layers)}, .kind = {kind_enum}, .timesteps = {a['timesteps']},\n"
           f"    .leak_shift = {a['leak_shift']}, "
           f".reset = {'HK_SNN_RESET_SOFT' if a['reset'] == 'soft' else 'HK_SNN_RESET_HARD'}, "
           f".input_bits = {a['input_bits']}, .seed = {a['seed']}u, .pool = {a['pool']},\n"
           f"    .in = {_dims((c, h, w))}}};")
    return "\n".join([
        "{",
        f"    enum {{ {up}_MEM_WORDS = {lay.mem_words}, {up}_BITS_WORDS = {lay.bits_words}, "
        f"{up}_Q_WORDS = {c * h * w}, {up}_COUNT_WORDS = {lay.count_words} }};",
        f"    static int32_t mem[{up}_MEM_WORDS];",
        f"    static uint32_t bits[{up}_BITS_WORDS];",
        f"    static int32_t q[{up}_Q_WORDS];",
        f"    static uint32_t counts[{up}_COUNT_WORDS];",
        f"    static const hk_binconv_layer layers[{len(lay.layers)}] = {{",
        *rows,
        "    };",
        "    " + net.replace("\n", "\n    "),
        "    const hk_binconv_scratch sc = {mem, bits, q, counts};",
        f"    uint32_t *const cnt = {first}; /* {', '.join(lay.counters)} */",
        "    uint32_t state = net.seed, synops = 0;",
        f"    if (hk_binconv_begin(&net, {e.ptr(n.inputs[0])}, sc) != 0) {{",
        "        return 1;",
        "    }",
        f"    for (int t = 0; t < {a['timesteps']}; t++) {{",
        "        cnt[0] += hk_binconv_encode(&net, sc, &state);",
        *steps,
        "    }",
        f"    cnt[{1 + len(lay.layers)}] += synops;",
        f"    hk_binconv_end(&net, sc, {e.ptr(n.name)});",
        "}",
    ])
