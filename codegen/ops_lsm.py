"""Emitter of the `lsm_policy` operator: a spiking reservoir policy run by kernels_c/hk_lsm.h.

The model file holds dense integer matrices; the C gets the synapses as sparse lists (by input
channel and by presynaptic neuron, nonzero weights only) and the readout as int16/int32 arrays.
The node's state (membranes, spikes in flight, random stream) is static and persists across
inferences: one inference is one control step (docs/reservoir-rl.md)."""
from __future__ import annotations

import numpy as np

from hilkit.models import reservoir

from .ir import CodegenError
from .ops import register


def checked(node) -> tuple[reservoir.Spec, dict]:
    """The node's spec and integer params (cached on the node)."""
    cached = getattr(node, "_lsm_checked", None)
    if cached is None:
        try:
            attrs = {k: v for k, v in node.attrs.items() if k != "exp"}
            cached = reservoir.check_values(attrs, node.in_shapes[0], node.params)
        except reservoir.LSMError as e:
            raise CodegenError(f"layer {node.name!r} (lsm_policy): {e}") from None
        node._lsm_checked = cached
    return cached


def sparse_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A [post, pre] matrix as lists by presynaptic column: (start [pre + 1] u32, post u16, weight i16)."""
    w = np.asarray(w, np.int64)
    post, pre = np.nonzero(w)
    order = np.lexsort((post, pre))                # group by pre, targets ascending
    post, pre = post[order], pre[order]
    start = np.zeros(w.shape[1] + 1, np.uint32)
    np.add.at(start, pre + 1, 1)
    return np.cumsum(start).astype(np.uint32), post.astype(np.uint16), w[post, pre].astype(np.int16)


def _arrays(node):
    s, p = checked(node)
    in_start, in_post, in_w = sparse_columns(p["w_in"])
    rec_start, rec_post, rec_w = sparse_columns(p["w_rec"])
    return [("gain", p["gain"].astype(np.float32)),
            ("in_start", in_start), ("in_post", in_post), ("in_w", in_w),
            ("rec_start", rec_start), ("rec_post", rec_post), ("rec_w", rec_w),
            ("w1", p["w1"].astype(np.int16)), ("b1", p["b1"].astype(np.int32)),
            ("w2", p["w2"].astype(np.int16))]


def _int64_array(name: str, v: np.ndarray) -> str:
    """A block-scope int64 array (the emitter's typed arrays stop at 32 bits)."""
    items = ", ".join(f"INT64_C({int(x)})" for x in np.asarray(v, np.int64).ravel())
    return f"static const int64_t {name}[{max(1, v.size)}] = {{{items}}};"


def _macs(node) -> int:
    """The readout's multiply-accumulates (the reservoir only adds: synaptic operations, counted)."""
    s, _ = checked(node)
    return s.hidden * s.excitatory + s.actions * s.hidden


def _note(node) -> str:
    s, p = checked(node)
    syn = int((p["w_rec"] != 0).sum())
    return (f"{s.neurons} LIF neurons ({s.excitatory} excitatory, {syn} recurrent synapses), "
            f"T={s.timesteps}, leak u >> {s.leak_shift}, Poisson input {s.input_bits} bits, "
            f"readout {s.excitatory}-{s.hidden}-{s.actions}, state kept across calls")


def _c_float(v) -> str:
    from .emit_c import c_float
    return c_float(np.float32(v))


@register("lsm_policy", ["hk_lsm.h"], arrays=_arrays, macs=_macs, note=_note)
def _lsm_policy(e, n) -> str:
    s, p = checked(n)
    if n.out_shape != (s.actions,):
        raise CodegenError(f"layer {n.name!r}: lsm_policy output shape {list(n.out_shape)} is not [{s.actions}]")
    ident = e.ident(n)
    up = ident.upper()
    counters = e.counters(n, list(reservoir.COUNTERS))
    net = (f"static const hk_lsm_net net = {{\n"
           f"    .n_obs = {s.n_obs}, .neurons = {up}_NEURONS, .excitatory = {up}_EXCITATORY, "
           f".timesteps = {s.timesteps},\n"
           f"    .leak_shift = {s.leak_shift}, .input_bits = {s.input_bits}, .threshold = {int(p['threshold'][0])}, "
           f".seed = {s.seed}u, .gain = {ident}_gain,\n"
           f"    .in_start = {ident}_in_start, .in_post = {ident}_in_post, .in_w = {ident}_in_w,\n"
           f"    .rec_start = {ident}_rec_start, .rec_post = {ident}_rec_post, .rec_w = {ident}_rec_w,\n"
           f"    .hidden = {up}_HIDDEN, .actions = {s.actions}, .w1 = {ident}_w1, .b1 = {ident}_b1, "
           f".w2 = {ident}_w2, .b2 = b2,\n"
           f"    .out_shift = {s.out_shift}, .out_scale = {_c_float(p['out_scale'][0])}}};")
    return "\n".join([
        "{",
        f"    enum {{ {up}_NEURONS = {s.neurons}, {up}_EXCITATORY = {s.excitatory}, {up}_HIDDEN = {s.hidden}, "
        f"{up}_OBS = {s.n_obs} }};",
        "    /* the reservoir's state persists from one control step (inference) to the next */",
        f"    static int32_t mem[{up}_NEURONS];",
        f"    static uint16_t fired[{up}_NEURONS];",
        f"    static uint16_t counts[{up}_EXCITATORY];",
        f"    static int32_t hid[{up}_HIDDEN];",
        f"    static int32_t q[{up}_OBS];",
        "    static hk_lsm_state state = {mem, fired, counts, hid, q, 0u, 0u, 0};",
        "    " + _int64_array("b2", p["b2"]),
        "    " + net.replace("\n", "\n    "),
        f"    /* counters: {', '.join(reservoir.COUNTERS)}; input [{s.n_obs} observations, reset flag] */",
        f"    if (hk_lsm_step_f32(&net, &state, {e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {counters}) != 0) {{",
        "        return 1;",
        "    }",
        "}",
    ])
