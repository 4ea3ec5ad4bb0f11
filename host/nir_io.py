"""NIR (Neuromorphic Intermediate Representation) to and from hilkit's `spiking_net` (docs/interchange.md).

NIR describes neurons in continuous time; hilkit's spiking_net runs them in discrete, fixed-point
steps (docs/snn.md). With a time step dt, forward Euler gives per step:
  IF   (dv/dt = R I):                    v <- v + dt R I
  LIF  (tau dv/dt = v_leak - v + R I):   v <- (1 - dt/tau) v + (dt/tau) (R I + v_leak)
  I    (dv/dt = R I, the output layer):  v <- v + dt R I
hilkit's leak is u <- u - (u >> k), i.e. the factor 1 - 2^-k, so k = round(log2(tau / dt)) and the
difference between 2^-k and dt/tau is reported. CubaLIF is accepted when tau_syn = dt (the synaptic
current then follows its input within the step); otherwise it has a state hilkit does not model.

Export writes the integers exactly: weights and biases as they are, thresholds theta - 1/2 (NIR
fires on v > v_th, hilkit on u >= theta, the same for integer membranes), R = 1/dt (IF, I) or
tau = 2^k dt, R = 2^k (LIF), so one Euler step adds exactly the integer current. NIR has no soft
reset (its neurons reset to v_reset): hilkit writes v_reset = 0 and carries the soft (subtractive)
reset in each neuron node's metadata ("reset": "subtract"); a NIR tool that ignores the metadata
simulates a hard reset. The rest that NIR has no field for (time steps, input coding, initial
membrane, weight bits) travels in the graph's metadata "hilkit" (JSON), so an export read back gives
the same integers and hence identical spike counts. A foreign graph is quantised with
`snn_convert.quantize` (per-layer scales, int32-safe), and the rounding is reported.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import HilkitError

DEFAULT_DT = 1e-3
INSTALL_HINT = "install it with `pip install 'hilkit[interchange]'` (or `pip install nir`)"


class NIRError(HilkitError):
    """A NIR graph hilkit cannot import, or a model it cannot export as NIR."""


def _nir():
    try:
        import nir
    except ImportError:
        raise NIRError(f"NIR import/export needs the `nir` package: {INSTALL_HINT}") from None
    return nir


# ---------------------------------------------------------------- export
def _spiking_layer(model) -> tuple[dict, bool]:
    layers = model.layers
    snn = [la for la in layers if la["op"] == "spiking_net"]
    rest = [la["op"] for la in layers if la["op"] != "spiking_net"]
    if len(snn) != 1 or snn[0]["inputs"] != [model.graph["input"]["name"]] or rest not in ([], ["softmax"]):
        ops = ", ".join(la["op"] for la in layers)
        raise NIRError(f"{model.path or model.name}: NIR export needs a spiking network (input -> spiking_net "
                       f"[-> softmax]); this model has: {ops}")
    return snn[0], rest == ["softmax"]


def to_nir(model, dt: float = DEFAULT_DT):
    """A nir.NIRGraph for a hilkit model whose graph is input -> spiking_net (-> softmax)."""
    from hilkit.models import snn_spec

    nir = _nir()
    layer, softmax = _spiking_layer(model)
    a = snn_spec.normalize(layer["attrs"])
    in_shape = tuple(model.shapes[layer["inputs"][0]])
    geo = snn_spec.geometry(a, in_shape)
    p = model.params(layer)
    f32 = f64 = np.float64
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    if a["coding"] == "direct":  # the first layer sees q = x 2^input_bits (rounded, which NIR cannot say)
        nodes["input_scale"] = nir.Scale(scale=np.full(in_shape, 2.0 ** a["input_bits"], f32))
    reset = {"soft": "subtract", "hard": "zero"}[a["reset"]]
    shape = in_shape
    for l in geo:
        if l.pool > 1:
            k = np.array([l.pool, l.pool])
            nodes[f"{l.name}_pool"] = nir.SumPool2d(kernel_size=k, stride=k, padding=np.array([0, 0]))
        # float64: thresholds - 1/2 and large integer biases are exact there (not in float32)
        w, b = np.asarray(p[f"{l.name}.weight"], f64), np.asarray(p[f"{l.name}.bias"], f64)
        if l.kind == "conv":
            if l.padding == "same" and (l.stride != 1 or l.kernel % 2 == 0):
                raise NIRError(f"{l.name}: a 'same' convolution with stride {l.stride} and kernel {l.kernel} pads "
                               "asymmetrically, which NIR's Conv2d cannot say")
            pad = (l.kernel - 1) // 2 if l.padding == "same" else 0
            nodes[l.name] = nir.Conv2d(input_shape=tuple(l.pooled[1:]), weight=w, stride=l.stride, padding=pad,
                                       dilation=1, groups=1, bias=b)
            nshape = tuple(l.out_dims)
        else:
            if len(shape) == 3 and int(np.prod(shape)) != shape[0] or len(in_shape) == 3 and l.index == 0:
                nodes[f"{l.name}_flatten"] = nir.Flatten(input_type={"input": np.array(l.pooled)}, start_dim=0)
            nodes[l.name] = nir.Affine(weight=w, bias=b)
            nshape = (l.out_dims[0],)
        ones = np.ones(nshape, f32)
        if not l.spiking:
            nodes[f"{l.name}_neuron"] = nir.I(r=ones / f32(dt))
        else:
            theta = float(p[f"{l.name}.threshold"][0])
            md = {"reset": reset, "hilkit_threshold": theta}
            if a["neuron"] == "if":
                nodes[f"{l.name}_neuron"] = nir.IF(r=ones / f32(dt), v_threshold=ones * f32(theta - 0.5),
                                                   v_reset=0 * ones, metadata=md)
            else:
                k = 2.0 ** a["leak_shift"]
                nodes[f"{l.name}_neuron"] = nir.LIF(tau=ones * f32(k * dt), r=ones * f32(k), v_leak=0 * ones,
                                                    v_threshold=ones * f32(theta - 0.5), v_reset=0 * ones, metadata=md)
        shape = tuple(l.out_dims)
    units = geo[-1].out_dims[0]
    nodes["output_scale"] = nir.Scale(scale=np.full((units,), float(p["output_scale"][0]), f32))
    nodes["output"] = nir.Output(output_type={"output": np.array([units])})
    names = list(nodes)
    info = {"attrs": {k: v for k, v in a.items() if k not in ("layers", "exp")}, "layers": a["layers"],
            "dt": dt, "softmax": softmax, "name": model.name, "meta": model.graph.get("meta", {}),
            "note": "hilkit spiking_net: integer weights; v_th = theta - 1/2; reset in node metadata"}
    return nir.NIRGraph(nodes=nodes, edges=[(names[i], names[i + 1]) for i in range(len(names) - 1)],
                        metadata={"hilkit": json.dumps(info), "dt": dt}, type_check=False)


def export_file(model, out, dt: float = DEFAULT_DT) -> str:
    """Write a hilkit spiking model as a NIR file (HDF5); returns a one-line note for the CLI."""
    from hilkit.models import modelfile

    nir = _nir()
    if not isinstance(model, modelfile.LoadedModel):
        model = modelfile.load(model)
    g = to_nir(model, dt)
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        nir.write(str(tmp), g)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
    return f", dt {dt:g} s; soft reset carried in neuron metadata (\"reset\": \"subtract\")"


# ---------------------------------------------------------------- import
def _chain(g) -> list[tuple[str, object]]:
    nir = _nir()
    inputs = [n for n, v in g.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise NIRError(f"the NIR graph has {len(inputs)} Input nodes; hilkit imports one")
    succ: dict[str, list[str]] = {}
    for a, b in g.edges:
        succ.setdefault(a, []).append(b)
    chain, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            raise NIRError(f"the NIR graph is recurrent at node {cur!r}: hilkit imports feed-forward chains")
        seen.add(cur)
        chain.append((cur, g.nodes[cur]))
        nxt = succ.get(cur, [])
        if not nxt:
            break
        if len(nxt) > 1:
            raise NIRError(f"node {cur!r} feeds {len(nxt)} nodes: hilkit imports feed-forward chains without branches")
        cur = nxt[0]
    if not isinstance(chain[-1][1], nir.Output):
        raise NIRError(f"the chain from the Input ends at {chain[-1][0]!r}, not at an Output node")
    if len(seen) != len(g.nodes):
        extra = sorted(set(g.nodes) - seen)
        raise NIRError(f"nodes {extra[:4]} are not on the chain from Input to Output: not supported")
    return chain


def _arr(v, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, np.float64), shape).astype(np.float64)


def from_nir(g, *, dt: float | None = None, steps: int | None = None, name: str | None = None):
    """(graph, arrays, report) of a hilkit model for a NIR graph (see the module docstring)."""
    from hilkit.models import snn_convert, snn_spec

    nir = _nir()
    md = dict(getattr(g, "metadata", None) or {})
    info = None
    if "hilkit" in md:
        try:
            raw = md["hilkit"]
            info = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except (ValueError, AttributeError):
            info = None
    if dt is None:
        dt = float(info["dt"]) if info else DEFAULT_DT
    if dt <= 0:
        raise NIRError(f"--dt must be positive, not {dt}")
    chain = _chain(g)
    in_shape = tuple(int(d) for d in np.asarray(chain[0][1].input_type["input"]).ravel())
    if len(in_shape) == 4 and in_shape[0] == 1:
        in_shape = in_shape[1:]

    entries, layers, pool, pool_sum, in_scale, out_scale = [], [], 1, True, None, None
    lin = None
    for nname, node in chain[1:-1]:
        kind = type(node).__name__
        if isinstance(node, nir.Scale):
            s = np.asarray(node.scale, np.float64)
            if not layers and lin is None:
                in_scale = s if in_scale is None else in_scale * s
            elif layers and lin is None and not layers[-1]["spiking"]:
                out_scale = s if out_scale is None else out_scale * s
            else:
                raise NIRError(f"node {nname!r} (Scale) sits between a synapse and its neurons: not supported")
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k, st, pd = (np.asarray(v).ravel() for v in (node.kernel_size, node.stride, node.padding))
            if len(set(k.tolist())) != 1 or k.tolist() != st.tolist() or np.any(pd):
                raise NIRError(f"node {nname!r} ({kind}): hilkit pools with square windows, stride = size, no padding")
            if lin is not None or pool != 1:
                raise NIRError(f"node {nname!r} ({kind}) must follow a neuron layer")
            pool, pool_sum = int(k[0]), isinstance(node, nir.SumPool2d)
            entries.append({"type": "avgpool", "size": pool})
        elif isinstance(node, nir.Flatten):
            continue  # hilkit's dense reads a [C, H, W] map in C, H, W order, as NIR's Flatten lists it
        elif isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            if lin is not None:
                raise NIRError(f"node {nname!r} ({kind}) follows another synapse: put neurons between them")
            w = np.asarray(node.weight, np.float64)
            b = np.asarray(getattr(node, "bias", None) if getattr(node, "bias", None) is not None
                           else np.zeros(w.shape[0]), np.float64)
            if isinstance(node, nir.Conv2d):
                e = _conv_entry(nname, node, w)
            else:
                e = {"type": "dense", "units": int(w.shape[0])}
            b = np.broadcast_to(b, (w.shape[0],)).astype(np.float64)
            lin = {"name": nname, "entry": e, "w_raw": w, "b": b,
                   # hilkit's FloatSNN weights read the average-pooled map
                   "w": w * pool * pool if (pool > 1 and pool_sum) else w}
            pool = 1
        elif isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.I)):
            if lin is None:
                raise NIRError(f"node {nname!r} ({kind}) has no synapse (Affine, Linear or Conv2d) before it")
            layers.append(_neuron(nname, node, lin, dt))
            entries.append(lin["entry"])
            lin = None
        else:
            raise NIRError(f"node {nname!r} is {kind}, which hilkit cannot import (supported: Input, Output, Affine, "
                           "Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, IF, LIF, CubaLIF (tau_syn = dt), "
                           "I (the output layer))")
    if lin is not None or not layers:
        raise NIRError("the NIR graph must end with neurons after its last synapse (the output layer: I)")
    if layers[-1]["spiking"] or any(not la["spiking"] for la in layers[:-1]):
        raise NIRError("hilkit's spiking_net ends with one non-spiking integrator layer (NIR I) and has "
                       "spiking IF/LIF/CubaLIF layers before it")
    kinds = {la["neuron"] for la in layers[:-1]}
    resets = {la["reset"] for la in layers[:-1]}
    shifts = {la["leak_shift"] for la in layers[:-1] if la["neuron"] == "lif"}
    if len(kinds) > 1 or len(resets) > 1 or len(shifts) > 1:
        raise NIRError(f"hilkit's spiking_net has one neuron model, reset and leak for all layers; the graph has "
                       f"neurons {sorted(kinds)}, resets {sorted(resets)}, leak shifts {sorted(shifts)}")
    neuron = kinds.pop() if kinds else "if"
    reset = resets.pop() if resets else "soft"
    shift = shifts.pop() if shifts else 0

    exact = info is not None and _exact_params(layers, in_scale, info)
    if exact:
        a = snn_spec.normalize(dict(info["attrs"], layers=entries))
        if steps is not None:
            a["timesteps"] = int(steps)
        params = {}
        for i, la in enumerate(layers):
            params[f"l{_index(entries, i)}.weight"] = la["w_raw"]
            params[f"l{_index(entries, i)}.bias"] = la["b_raw"]
            if la["spiking"]:
                params[f"l{_index(entries, i)}.threshold"] = np.array([la["theta_int"]], np.float64)
        scale = float(np.ravel(out_scale)[0]) if out_scale is not None else 1.0
        params["output_scale"] = np.array([scale], np.float32)
        report = {"path": "exact (hilkit metadata)", "dt": dt}
    else:
        if steps is None:
            raise NIRError("this NIR graph does not say how many time steps to run: give --steps N")
        fsnn = snn_convert.FloatSNN(in_shape, entries, {}, {})
        for i, la in enumerate(layers):
            li = f"l{_index(entries, i)}"
            w = la["w"]
            if i == 0 and in_scale is not None:
                if np.ptp(np.ravel(in_scale)) != 0:
                    raise NIRError("the Scale after the Input must be the same for every input")
                w = w * float(np.ravel(in_scale)[0])
            fsnn.weights[f"{li}.weight"] = w
            fsnn.weights[f"{li}.bias"] = la["b"]
            if la["spiking"]:
                fsnn.thresholds[li] = 1.0
        a, params = snn_convert.quantize(fsnn, timesteps=int(steps), reset=reset, v_init="zero", neuron=neuron,
                                         leak_shift=shift)
        # quantize scales the output by 1/T (a rate); NIR's output is the integrator's value after T steps.
        scale = float(params["output_scale"][0]) * int(steps)
        if out_scale is not None:
            scale *= float(np.ravel(out_scale)[0])
        params["output_scale"] = np.array([scale], np.float32)
        report = {"path": "quantized", "dt": dt, "timesteps": int(steps), "layers": _rounding(fsnn, a, params, in_shape)}
    report.update({"neuron": neuron, "reset": reset, "leak_shift": shift,
                   "leak": [la.get("leak") for la in layers if la.get("leak")]})
    graph, arrays = snn_convert.build_graph(a, params, in_shape, name=name or (info or {}).get("name") or "nir-import",
                                            meta=dict((info or {}).get("meta") or {"source": "nir"}),
                                            softmax=bool(info.get("softmax", False)) if info else False)
    return graph, arrays, report


def _index(entries, i) -> int:
    """Position in `entries` of the i-th neuron layer (avgpool entries are not neuron layers)."""
    return [j for j, e in enumerate(entries) if e["type"] != "avgpool"][i]


def _conv_entry(nname, node, w) -> dict:
    f, c, kh, kw = w.shape
    stride = np.ravel(node.stride).tolist()
    dil = np.ravel(node.dilation).tolist()
    pad = node.padding
    if kh != kw or len(set(stride)) != 1 or set(dil) != {1} or int(node.groups) != 1:
        raise NIRError(f"node {nname!r} (Conv2d): hilkit needs a square kernel, equal strides, no dilation, 1 group")
    s = int(stride[0])
    if isinstance(pad, str):
        padding = {"same": "same", "valid": "valid"}.get(pad)
    else:
        p = set(np.ravel(pad).tolist())
        padding = "valid" if p == {0} else ("same" if p == {(kh - 1) // 2} and s == 1 and kh % 2 == 1 else None)
    if padding is None:
        raise NIRError(f"node {nname!r} (Conv2d): padding {pad!r} with kernel {kh} and stride {s} is neither "
                       "'same' nor 'valid'")
    return {"type": "conv", "filters": int(f), "kernel": int(kh), "stride": s, "padding": padding}


def _neuron(nname, node, lin, dt) -> dict:
    """Per-step (Euler, dt) weights and bias of one neuron layer, thresholds folded to 1."""
    nir = _nir()
    n = lin["w"].shape[0]
    shape = np.asarray(node.input_type["input"]).ravel()
    md = dict(getattr(node, "metadata", None) or {})
    out = {"name": nname, "spiking": not isinstance(node, nir.I), "w_raw": lin["w_raw"], "b_raw": lin["b"]}
    if isinstance(node, nir.I):
        g = dt * _arr(node.r, shape).reshape(-1)
        out.update(neuron="i", reset="-", leak_shift=0)
        const = 0.0
    else:
        v_reset = _arr(node.v_reset, shape)
        if np.any(v_reset != 0):
            raise NIRError(f"node {nname!r}: v_reset must be 0 (hilkit resets to 0, or subtracts the threshold)")
        reset = md.get("reset", "zero")
        reset = reset.decode() if isinstance(reset, bytes) else str(reset)
        out["reset"] = "soft" if reset == "subtract" else "hard"
        if isinstance(node, nir.IF):
            g = dt * _arr(node.r, shape).reshape(-1)
            out.update(neuron="if", leak_shift=0)
            const = 0.0
        else:
            tau = _arr(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau, shape).reshape(-1)
            if isinstance(node, nir.CubaLIF):
                tsyn = _arr(node.tau_syn, shape).reshape(-1)
                if np.any(np.abs(dt / tsyn - 1) > 1e-6):
                    raise NIRError(f"node {nname!r} (CubaLIF): tau_syn {tsyn.max():g} s differs from dt {dt:g} s; "
                                   "hilkit's neurons have no synaptic current state (use tau_syn = dt, or LIF)")
                w_in = _arr(node.w_in, shape).reshape(-1)
            else:
                w_in = 1.0
            if len(set(np.round(tau, 15).tolist())) != 1:
                raise NIRError(f"node {nname!r}: hilkit's LIF has one time constant per network")
            k = max(1, int(round(math.log2(tau[0] / dt))))
            g = (dt / tau) * _arr(node.r, shape).reshape(-1) * w_in
            const = (dt / tau) * _arr(node.v_leak, shape).reshape(-1)
            out.update(neuron="lif", leak_shift=k,
                       leak={"layer": nname, "dt_over_tau": float(dt / tau[0]), "hilkit": 2.0 ** -k,
                             "relative_error": float(abs(2.0 ** -k - dt / tau[0]) / (dt / tau[0]))})
        theta = _arr(node.v_threshold, shape).reshape(-1)
        if np.any(theta <= 0):
            raise NIRError(f"node {nname!r}: thresholds must be positive")
        out["theta_raw"] = theta
        out["theta_int"] = float(np.floor(theta[0]) + 1)
        thr = theta
    if g.size != n and g.size % n == 0:  # a conv map: one value per neuron; hilkit needs one per channel
        g = g.reshape(n, -1)
        if np.any(g != g[:, :1]):
            raise NIRError(f"node {nname!r}: parameters vary within a channel of a convolution: not supported")
        g = g[:, 0]
        if out["spiking"]:
            t2 = thr.reshape(n, -1)
            if np.any(t2 != t2[:, :1]):
                raise NIRError(f"node {nname!r}: thresholds vary within a channel of a convolution: not supported")
            thr = t2[:, 0]
        const = np.asarray(const).reshape(n, -1)[:, 0] if np.size(const) > 1 else const
    out["g0"] = g
    if out["spiking"]:
        g = g / thr           # fold the thresholds: every hilkit threshold is then 1
        const = const / thr
    w = lin["w"] * g.reshape((-1,) + (1,) * (lin["w"].ndim - 1))
    out.update(w=w, b=lin["b"] * g + const, g=g)
    return out


def _exact_params(layers, in_scale, info) -> bool:
    """True when the graph holds hilkit's integers unchanged (an export read back)."""
    a = info.get("attrs", {})
    if a.get("coding") == "direct":
        if in_scale is None or not np.all(np.asarray(in_scale) == 2.0 ** a.get("input_bits", 8)):
            return False
    for la in layers:
        if not (np.array_equal(la["w_raw"], np.rint(la["w_raw"])) and np.array_equal(la["b_raw"], np.rint(la["b_raw"]))):
            return False
        if la["spiking"] and not np.all(la["theta_raw"] == la["theta_int"] - 0.5):
            return False
        if not np.allclose(la["g0"], 1.0, rtol=1e-6):
            return False
    return True


def _rounding(fsnn, a, params, in_shape) -> list[dict]:
    """Per layer: the scale K chosen and the largest weight rounding error relative to the largest weight."""
    from hilkit.models import snn_spec

    out = []
    for l in snn_spec.geometry(a, in_shape):
        wf = fsnn.weights[f"{l.name}.weight"] / (l.pool ** 2)
        wi = np.asarray(params[f"{l.name}.weight"], np.float64)
        s = float(np.sum(wi * wf) / max(np.sum(wf * wf), 1e-300))  # least-squares scale
        row = {"layer": l.name, "kind": l.kind, "scale": s,
               "weight_rel_error": float(np.max(np.abs(wi / s - wf)) / max(float(np.max(np.abs(wf))), 1e-300))}
        if l.spiking:
            row["threshold"] = int(params[f"{l.name}.threshold"][0])
        out.append(row)
    return out


def import_file(src, out, *, dt: float | None = None, steps: int | None = None, name: str | None = None):
    """Read a NIR file, write a hilkit model file. Returns (LoadedModel, one-line note)."""
    from hilkit.models import modelfile

    nir = _nir()
    p = Path(src)
    try:
        g = nir.read(str(p))
    except Exception as e:  # noqa: BLE001 - h5py/NIR raise many types for a bad file
        raise NIRError(f"{p}: not a readable NIR file ({type(e).__name__}: {' '.join(str(e).split())})") from None
    from hilkit.models import snn_spec

    try:
        graph, arrays, report = from_nir(g, dt=dt, steps=steps, name=name or None)
    except NIRError as e:
        raise NIRError(f"{p}: {e}") from None
    except snn_spec.SpecError as e:
        raise NIRError(f"{p}: the network does not fit hilkit's fixed-point spiking_net: {e}") from None
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as e:
        raise NIRError(f"{p}: malformed NIR graph: {type(e).__name__}: {' '.join(str(e).split())}") from None
    if "name" not in graph or graph["name"] == "nir-import":
        graph["name"] = name or p.stem
    try:
        m = modelfile.save(out, graph, arrays)
    except modelfile.ModelFileError as e:
        raise NIRError(f"{p}: the imported network is not a valid hilkit model: {e}") from None
    note = f" ({report['path']}, dt {report['dt']:g} s, {report['neuron']}, {report['reset']} reset"
    if report.get("leak"):
        lk = report["leak"][0]
        note += f", leak 2^-{report['leak_shift']} for dt/tau {lk['dt_over_tau']:.4g} ({lk['relative_error']:.1%} off)"
    if report.get("layers"):
        worst = max(r["weight_rel_error"] for r in report["layers"])
        note += f", weights rounded to within {worst:.2e} of the largest"
    return m, note + ")"
