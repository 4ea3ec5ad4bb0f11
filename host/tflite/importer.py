""".tflite -> hilkit model file (float32 models).

TFLite tensors are channels-last (NHWC); hilkit's are channels-first ([C, H, W], batch excluded).
Convolution and depthwise weights are transposed on the way in. A RESHAPE that flattens an NHWC
tensor lists its values in H, W, C order, where hilkit's `flatten` lists them in C, H, W order: the
importer keeps such a flatten pending and, when its consumers are FULLY_CONNECTED layers, permutes
those layers' weight columns instead (the numbers are then exactly the same, at no run-time cost);
any other consumer gets an explicit `flatten_hwc` layer. Element-wise activations commute with the
flatten and are applied before it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .schema import TFLiteError, as_str, buffer_bytes, op_names, opcode, schema, type_name, NUMPY_TYPES

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE",
             "SOFTMAX", "LOGISTIC", "GELU", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "ADD", "MUL", "MEAN", "PAD",
             "CONCATENATION", "TRANSPOSE (to NCHW before a flatten)", "DEQUANTIZE (of float16 weights)")
ACTIVATIONS = {0: None, 1: "relu", 2: "relu1", 3: "relu6", 4: "tanh"}
UNARY = {"RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu1", "TANH": "tanh", "LOGISTIC": "sigmoid"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
GELU_SIGMOID_K = np.float32(1.702)


@dataclass
class Val:
    """What a TFLite tensor is in the hilkit graph.

    kind "ir": the hilkit value `name` (a layer or the input) of hilkit shape `shape`.
    kind "hwc": a pending flatten of the [C, H, W] value `name`, in TFLite's H, W, C order.
    kind "nchw": a pending TRANSPOSE [0, 3, 1, 2] of the [C, H, W] value `name` (only a flatten may follow)."""
    name: str
    shape: tuple[int, ...]
    kind: str = "ir"
    label: str = ""   # the RESHAPE's tensor name: the name of the flatten layer, once there is one


def hwc_perm(c: int, h: int, w: int) -> np.ndarray:
    """perm[i] = the C, H, W-order index of the i-th value of the H, W, C-order flatten."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


class _Importer:
    def __init__(self, data: bytes, where: str):
        self.s = schema()
        self.where = where
        self.data = data
        try:
            self.model = self.s.ModelT.InitFromPackedBuf(bytearray(data), 0)
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise TFLiteError(f"{where}: not a readable .tflite flatbuffer ({type(e).__name__}: {e})") from None
        if not self.model.subgraphs:
            raise TFLiteError(f"{where}: the .tflite file has no subgraph")
        self.sg = self.model.subgraphs[0]
        self.names = op_names()
        self.layers: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.used: set[str] = {"input", "INPUT"}
        self.vals: dict[int, Val] = {}
        self.consts: dict[int, np.ndarray] = {}
        self.flat_cache: dict[tuple[str, str], str] = {}
        self.input_shape: tuple[int, ...] | None = None

    # ------------------------------------------------------------ tensors
    def tensor(self, ti: int):
        return self.sg.tensors[ti]

    def tname(self, ti: int) -> str:
        return as_str(self.tensor(ti).name)

    def tshape(self, ti: int) -> tuple[int, ...]:
        t = self.tensor(ti)
        return tuple(int(d) for d in (t.shape if t.shape is not None else []))

    def const(self, ti: int) -> np.ndarray | None:
        """The value of a constant tensor (weights, shapes, axes), or None for an activation."""
        if ti < 0:
            return None
        if ti in self.consts:
            return self.consts[ti]
        t = self.tensor(ti)
        raw = buffer_bytes(self.model, int(t.buffer or 0), self.data)
        if not raw:
            return None
        tn = type_name(t.type)
        if tn not in NUMPY_TYPES:
            raise TFLiteError(f"{self.where}: tensor {self.tname(ti)!r} has type {tn}: hilkit imports float32 models")
        a = np.frombuffer(raw, dtype=NUMPY_TYPES[tn]).reshape(self.tshape(ti))
        self.consts[ti] = a
        return a

    def weights(self, ti: int, what: str, op: str) -> np.ndarray:
        a = self.const(ti)
        if a is None:
            raise TFLiteError(f"{self.where}: {op} {what} {self.tname(ti)!r} is not a constant: hilkit needs constant weights")
        if a.dtype.kind != "f":
            raise TFLiteError(f"{self.where}: {op} {what} {self.tname(ti)!r} is {a.dtype}: "
                              "hilkit imports float32 models (quantized .tflite is not supported)")
        return a.astype(np.float32)

    def ir_shape(self, ti: int) -> tuple[int, ...]:
        """hilkit shape of an activation tensor: [1, H, W, C] -> [C, H, W]; [1, N] -> [N]."""
        shp = self.tshape(ti)
        t = self.tensor(ti)
        if type_name(t.type) != "FLOAT32":
            raise TFLiteError(f"{self.where}: tensor {self.tname(ti)!r} is {type_name(t.type)}: "
                              "hilkit imports float32 models (quantized .tflite is not supported)")
        if len(shp) == 4:
            return (shp[3], shp[1], shp[2])
        if len(shp) == 2:
            return (shp[1],)
        raise TFLiteError(f"{self.where}: tensor {self.tname(ti)!r} has shape {list(shp)}: hilkit imports "
                          "[1, H, W, C] images and [1, N] vectors")

    def val(self, ti: int, op: str) -> Val:
        if ti in self.vals:
            return self.vals[ti]
        if self.const(ti) is not None:
            raise TFLiteError(f"{self.where}: {op} takes constant tensor {self.tname(ti)!r} as its data input: "
                              "not supported")
        raise TFLiteError(f"{self.where}: {op} reads tensor {self.tname(ti)!r} before any operator writes it")

    # ------------------------------------------------------------ layers
    def _names_for(self, ti: int, count: int, fallback: list[str]) -> list[str]:
        """Layer names from a tensor name: "conv1;relu1" names two fused layers (the exporter writes
        that; TensorFlow's converter joins names with ';' too). Otherwise generated names."""
        parts = self.tname(ti).split(";")
        if (len(parts) == count and all(_NAME.match(p) for p in parts)
                and len({p.upper() for p in parts}) == count and not ({p.upper() for p in parts} & self.used)):
            return parts
        out = []
        for base in fallback:
            name, k = base, 1
            while name.upper() in self.used:
                k += 1
                name = f"{base}_{k}"
            out.append(name)
            self.used.add(name.upper())
        return out

    def add(self, name: str, op: str, inputs: list[str], attrs: dict | None = None,
            params: dict[str, np.ndarray] | None = None) -> str:
        self.used.add(name.upper())
        layer = {"name": name, "op": op, "inputs": list(inputs)}
        if attrs:
            layer["attrs"] = attrs
        if params:
            layer["params"] = {}
            for role, arr in params.items():
                key = f"{name}.{role}"
                self.arrays[key] = np.ascontiguousarray(arr, dtype=np.float32)
                layer["params"][role] = key
        self.layers.append(layer)
        return name

    def emit(self, idx: int, out_ti: int, specs: list[tuple], act: int | None, base: str):
        """Add the layers `specs` [(op, inputs or None = previous, attrs, params)] plus the fused
        activation `act`, named after the output tensor; the last one becomes tensor out_ti."""
        act_op = self.activation(act, base)
        if act_op:
            specs = specs + [(act_op, None, None, None)]
        fallback = [f"{base}_{idx}"] + [f"{s[0]}_{idx}" for s in specs[1:]]
        names = self._names_for(out_ti, len(specs), fallback)
        prev = None
        for name, (op, inputs, attrs, params) in zip(names, specs):
            prev = self.add(name, op, inputs if inputs is not None else [prev], attrs, params)
        return prev

    def activation(self, act: int | None, op: str) -> str | None:
        if not act:
            return None
        if act not in ACTIVATIONS:
            raise TFLiteError(f"{self.where}: {op} has fused activation {act} (SIGN_BIT?), which hilkit cannot import")
        return ACTIVATIONS[act]

    def materialize(self, v: Val, idx: int) -> Val:
        """An IR value for a pending flatten (hwc: `flatten_hwc`; nchw is only valid before a flatten)."""
        if v.kind == "ir":
            return v
        if v.kind == "nchw":
            raise TFLiteError(f"{self.where}: TRANSPOSE to NCHW is only supported right before a flattening RESHAPE")
        key = ("flatten_hwc", v.name)
        if key not in self.flat_cache:
            self.flat_cache[key] = self.add(self._label(v.label, f"{v.name}_hwc"), "flatten_hwc", [v.name])
        c, h, w = v.shape
        return Val(self.flat_cache[key], (c * h * w,))

    def flatten_chw(self, v: Val, label: str = "") -> str:
        key = ("flatten", v.name)
        if key not in self.flat_cache:
            self.flat_cache[key] = self.add(self._label(label or v.label, f"{v.name}_flat"), "flatten", [v.name])
        return self.flat_cache[key]

    def _label(self, label: str, fallback: str) -> str:
        if _NAME.match(label or "") and label.upper() not in self.used:
            return label
        return self._fresh(fallback)

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name.upper() in self.used:
            k += 1
            name = f"{base}_{k}"
        return name

    # ------------------------------------------------------------ the graph
    def run(self) -> tuple[dict, dict]:
        sg = self.sg
        ins = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
        outs = [int(i) for i in (sg.outputs if sg.outputs is not None else [])]
        if len(ins) != 1 or len(outs) != 1:
            raise TFLiteError(f"{self.where}: the model has {len(ins)} input(s) and {len(outs)} output(s); "
                              "hilkit imports models with one input and one output")
        self.input_ti = ins[0]
        self.input_shape = self.ir_shape(ins[0])
        self.vals[ins[0]] = Val("input", self.input_shape)
        for idx, op in enumerate(sg.operators or []):
            code = opcode(self.model.operatorCodes[op.opcodeIndex])
            name = self.names.get(code, f"builtin code {code}")
            if code == self.s.BuiltinOperator.CUSTOM or name == "CUSTOM":
                custom = as_str(self.model.operatorCodes[op.opcodeIndex].customCode)
                name = f"CUSTOM ({custom})"
            handler = getattr(self, f"op_{name}", None)
            if handler is None:
                raise TFLiteError(f"{self.where}: operator {idx} is {name}, which hilkit cannot import "
                                  f"(supported: {', '.join(SUPPORTED)})")
            ins_ = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outs_ = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            try:
                handler(idx, ins_, outs_, op.builtinOptions)
            except TFLiteError:
                raise
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as e:
                raise TFLiteError(f"{self.where}: operator {idx} ({name}) is malformed: "
                                  f"{type(e).__name__}: {' '.join(str(e).split())}") from None
        out = self.val(outs[0], "the graph output")
        out = self.materialize(out, len(sg.operators or []))
        if out.name == "input":
            raise TFLiteError(f"{self.where}: the model's output is its input: nothing to import")
        return self.graph(out.name)

    def graph(self, output: str) -> tuple[dict, dict]:
        meta, name = {"source": "tflite"}, None
        for md in self.model.metadata or []:
            if as_str(md.name) == "hilkit":
                try:
                    info = json.loads(buffer_bytes(self.model, int(md.buffer), self.data).decode("utf-8"))
                    name, meta = info.get("name"), dict(info.get("meta") or {})
                    for la in self.layers:
                        if la["name"] in (info.get("exp") or {}):
                            la.setdefault("attrs", {})["exp"] = info["exp"][la["name"]]
                except (ValueError, UnicodeDecodeError):
                    pass
        desc = as_str(self.model.description)
        if desc and "description" not in meta and not name:
            meta["description"] = desc
        graph = {"format": "hilkit-model", "version": 1, "name": name,
                 "input": {"name": "input", "shape": list(self.input_shape)},
                 "layers": self.layers, "output": output, "meta": meta}
        if not name:
            del graph["name"]
        _fold_gelu_sigmoid(graph, self.arrays)
        return graph, self.arrays

    # ------------------------------------------------------------ operators
    def _conv_common(self, idx, ins, outs, o, op):
        x = self.materialize(self.val(ins[0], op), idx)
        if len(x.shape) != 3:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) needs an image input, got {list(x.shape)}")
        if o.strideH != o.strideW:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) has strides {o.strideH}x{o.strideW}: "
                              "hilkit supports equal strides")
        if (o.dilationHFactor or 1) != 1 or (o.dilationWFactor or 1) != 1:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) is dilated: not supported")
        pad = "same" if o.padding == self.s.Padding.SAME else "valid"
        return x, pad

    def _bias(self, ins, n, op):
        if len(ins) > 2 and ins[2] >= 0:
            return self.weights(ins[2], "bias", op).reshape(n)
        return np.zeros(n, np.float32)

    def op_CONV_2D(self, idx, ins, outs, o):
        x, pad = self._conv_common(idx, ins, outs, o, "CONV_2D")
        w = self.weights(ins[1], "filter", "CONV_2D")          # [O, kh, kw, I]
        f, kh, kw, ci = w.shape
        if kh != kw:
            raise TFLiteError(f"{self.where}: CONV_2D (operator {idx}) has a {kh}x{kw} kernel: hilkit supports square kernels")
        if ci != x.shape[0]:
            raise TFLiteError(f"{self.where}: CONV_2D (operator {idx}) is grouped ({x.shape[0]} input channels, "
                              f"filter depth {ci}): not supported")
        attrs = {"filters": int(f), "kernel": int(kh), "stride": int(o.strideH), "padding": pad}
        params = {"weight": w.transpose(0, 3, 1, 2), "bias": self._bias(ins, f, "CONV_2D")}
        self.out(outs[0], self.emit(idx, outs[0], [("conv2d", [x.name], attrs, params)],
                                    o.fusedActivationFunction, "conv2d"))

    def op_DEPTHWISE_CONV_2D(self, idx, ins, outs, o):
        x, pad = self._conv_common(idx, ins, outs, o, "DEPTHWISE_CONV_2D")
        w = self.weights(ins[1], "filter", "DEPTHWISE_CONV_2D")  # [1, kh, kw, C*m]
        _, kh, kw, cm = w.shape
        c = x.shape[0]
        if kh != kw:
            raise TFLiteError(f"{self.where}: DEPTHWISE_CONV_2D (operator {idx}) has a {kh}x{kw} kernel: "
                              "hilkit supports square kernels")
        if cm % c:
            raise TFLiteError(f"{self.where}: DEPTHWISE_CONV_2D (operator {idx}): {cm} output channels is not a "
                              f"multiple of {c} input channels")
        attrs = {"kernel": int(kh), "stride": int(o.strideH), "padding": pad, "multiplier": int(cm // c)}
        params = {"weight": w[0].transpose(2, 0, 1), "bias": self._bias(ins, cm, "DEPTHWISE_CONV_2D")}
        self.out(outs[0], self.emit(idx, outs[0], [("dwconv2d", [x.name], attrs, params)],
                                    o.fusedActivationFunction, "dwconv2d"))

    def op_FULLY_CONNECTED(self, idx, ins, outs, o):
        x = self.val(ins[0], "FULLY_CONNECTED")
        if o is not None and (o.weightsFormat or 0) != 0:
            raise TFLiteError(f"{self.where}: FULLY_CONNECTED (operator {idx}) has shuffled weights: not supported")
        w = self.weights(ins[1], "weights", "FULLY_CONNECTED")    # [units, in]
        units, n_in = w.shape
        if x.kind == "ir" and len(x.shape) == 3:  # FULLY_CONNECTED flattens its input itself
            x = Val(x.name, x.shape, "hwc")
        if x.kind == "hwc":
            c, h, wd = x.shape
            if c * h * wd != n_in:
                raise TFLiteError(f"{self.where}: FULLY_CONNECTED (operator {idx}) has {n_in} inputs per unit, "
                                  f"but its input has {c * h * wd} values")
            wi = np.empty_like(w)
            wi[:, hwc_perm(c, h, wd)] = w                    # exact: the same numbers, reordered
            src, w = self.flatten_chw(x), wi
        else:
            x = self.materialize(x, idx)
            src = x.name
            if x.shape != (n_in,):
                raise TFLiteError(f"{self.where}: FULLY_CONNECTED (operator {idx}) expects {n_in} inputs, "
                                  f"its input has shape {list(x.shape)}")
        params = {"weight": w, "bias": self._bias(ins, units, "FULLY_CONNECTED")}
        act = o.fusedActivationFunction if o is not None else 0
        self.out(outs[0], self.emit(idx, outs[0], [("dense", [src], {"units": int(units)}, params)], act, "dense"))

    def _pool(self, idx, ins, outs, o, op, hk_op):
        x = self.materialize(self.val(ins[0], op), idx)
        if len(x.shape) != 3:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) needs an image input, got {list(x.shape)}")
        if o.filterHeight != o.filterWidth or o.strideH != o.strideW:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) has a {o.filterHeight}x{o.filterWidth} window "
                              f"and strides {o.strideH}x{o.strideW}: hilkit supports square windows, equal strides")
        k, s = int(o.filterHeight), int(o.strideH)
        _, h, w = x.shape
        if o.padding == self.s.Padding.SAME:
            from hilkit.models.functional import same_padding
            if any(same_padding(n, k, s) != (0, 0) for n in (h, w)):
                raise TFLiteError(f"{self.where}: {op} (operator {idx}) pads its {h}x{w} input (SAME): hilkit "
                                  "pools without padding (VALID)")
        if k > h or k > w:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) window {k}x{k} exceeds its {h}x{w} input")
        self.out(outs[0], self.emit(idx, outs[0], [(hk_op, [x.name], {"size": k, "stride": s}, None)],
                                    o.fusedActivationFunction, hk_op))

    def op_AVERAGE_POOL_2D(self, idx, ins, outs, o):
        self._pool(idx, ins, outs, o, "AVERAGE_POOL_2D", "avgpool2d")

    def op_MAX_POOL_2D(self, idx, ins, outs, o):
        self._pool(idx, ins, outs, o, "MAX_POOL_2D", "maxpool2d")

    def op_RESHAPE(self, idx, ins, outs, o):
        x = self.val(ins[0], "RESHAPE")
        new = self.tshape(outs[0])
        old = self.tshape(ins[0])
        if int(np.prod(new)) != int(np.prod(old)):
            raise TFLiteError(f"{self.where}: RESHAPE (operator {idx}) from {list(old)} to {list(new)} changes the size")
        if len(new) == 2:                                      # a flatten
            label = self.tname(outs[0])
            if x.kind == "nchw":
                self.vals[outs[0]] = Val(self.flatten_chw(x, label), (int(np.prod(x.shape)),))
            elif x.kind == "hwc" or len(x.shape) == 1:
                self.vals[outs[0]] = x
            elif x.shape[0] == 1 or x.shape[1] * x.shape[2] == 1:   # C, H, W and H, W, C orders agree
                self.vals[outs[0]] = Val(self.flatten_chw(x, label), (int(np.prod(x.shape)),))
            else:
                self.vals[outs[0]] = Val(x.name, x.shape, "hwc", label)
            return
        if len(new) == 4 and x.kind == "ir":
            target = (new[3], new[1], new[2])
            if target == x.shape:
                self.vals[outs[0]] = x
                return
            if x.name == "input" and not self.layers and (new[3] == 1 or new[1] * new[2] == 1) \
                    and self._uses(self.input_ti) == 1:
                # [1, N] -> [1, H, W, 1] right at the input: the same memory, so the input is [1, H, W].
                self.input_shape = target
                self.vals[outs[0]] = Val("input", target)
                return
        raise TFLiteError(f"{self.where}: RESHAPE (operator {idx}) from {list(old)} to {list(new)} is not supported "
                          "(hilkit imports flattening reshapes)")

    def _uses(self, ti: int) -> int:
        return sum(int(ti in [int(i) for i in op.inputs]) for op in self.sg.operators or [])

    def op_TRANSPOSE(self, idx, ins, outs, o):
        x = self.val(ins[0], "TRANSPOSE")
        perm = self.const(ins[1])
        if x.kind != "ir" or len(x.shape) != 3 or perm is None or [int(p) for p in perm.ravel()] != [0, 3, 1, 2]:
            raise TFLiteError(f"{self.where}: TRANSPOSE (operator {idx}) is only supported as NHWC -> NCHW "
                              "right before a flattening RESHAPE")
        self.vals[outs[0]] = Val(x.name, x.shape, "nchw")

    def op_DEQUANTIZE(self, idx, ins, outs, o):
        a = self.const(ins[0])
        if a is None or a.dtype != np.float16:
            raise TFLiteError(f"{self.where}: DEQUANTIZE (operator {idx}) of a non-float16 tensor: quantized "
                              ".tflite is not supported (float32 and float16 weights are)")
        self.consts[outs[0]] = a.astype(np.float32)

    def _unary(self, idx, ins, outs, hk_op, attrs=None):
        x = self.val(ins[0], hk_op)
        if x.kind == "nchw":
            x = self.materialize(x, idx)
        # Element-wise: apply it before a pending flatten, which then stays pending.
        name = self.emit(idx, outs[0], [(hk_op, [x.name], attrs, None)], None, hk_op)
        self.vals[outs[0]] = Val(name, x.shape, x.kind, x.label)

    def op_RELU(self, idx, ins, outs, o):
        self._unary(idx, ins, outs, "relu")

    def op_RELU6(self, idx, ins, outs, o):
        self._unary(idx, ins, outs, "relu6")

    def op_RELU_N1_TO_1(self, idx, ins, outs, o):
        self._unary(idx, ins, outs, "relu1")

    def op_TANH(self, idx, ins, outs, o):
        self._unary(idx, ins, outs, "tanh")

    def op_LOGISTIC(self, idx, ins, outs, o):
        self._unary(idx, ins, outs, "sigmoid")

    def op_GELU(self, idx, ins, outs, o):
        if o is not None and o.approximate:
            self._unary(idx, ins, outs, "gelu", {"approx": "tanh"})
        else:
            self._unary(idx, ins, outs, "gelu_erf")

    def op_SOFTMAX(self, idx, ins, outs, o):
        x = self.materialize(self.val(ins[0], "SOFTMAX"), idx)
        if len(x.shape) != 1:
            raise TFLiteError(f"{self.where}: SOFTMAX (operator {idx}) over an image tensor: hilkit's softmax "
                              "takes a vector")
        beta = np.float32(o.beta if o is not None else 1.0)
        specs = [("softmax", [x.name], None, None)]
        if beta != 1:
            specs = [("mul_const", [x.name], None, {"value": np.full(x.shape, beta, np.float32)}),
                     ("softmax", None, None, None)]
        self.out(outs[0], self.emit(idx, outs[0], specs, None, "softmax"))

    def _binary(self, idx, ins, outs, o, op, hk_op):
        ca, cb = self.const(ins[0]), self.const(ins[1])
        act = o.fusedActivationFunction if o is not None else 0
        if ca is not None and cb is not None:
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) of two constants: not supported")
        if ca is not None or cb is not None:
            data_ti, c = (ins[1], ca) if ca is not None else (ins[0], cb)
            x = self.val(data_ti, op)
            if x.kind == "nchw":
                x = self.materialize(x, idx)
            tshape = self.tshape(data_ti)
            try:
                full = np.broadcast_to(c.astype(np.float32), tshape)
            except ValueError:
                raise TFLiteError(f"{self.where}: {op} (operator {idx}) cannot broadcast constant {list(c.shape)} "
                                  f"to {list(tshape)}") from None
            value = full.reshape(tshape)[0]
            if len(tshape) == 4:
                value = value.transpose(2, 0, 1)                 # H, W, C -> C, H, W
            if x.kind == "hwc":
                c_, h_, w_ = x.shape
                value = value.reshape(h_, w_, c_).transpose(2, 0, 1)
            name = self.emit(idx, outs[0], [(f"{hk_op}_const", [x.name], None, {"value": value})], act, hk_op)
            self.vals[outs[0]] = Val(name, x.shape, x.kind)
            return
        a, b = self.val(ins[0], op), self.val(ins[1], op)
        if self.tshape(ins[0]) != self.tshape(ins[1]):
            raise TFLiteError(f"{self.where}: {op} (operator {idx}) broadcasts {list(self.tshape(ins[0]))} with "
                              f"{list(self.tshape(ins[1]))}: hilkit supports equal shapes (or a constant operand)")
        kind = "ir"
        if a.kind == b.kind == "hwc" and a.shape == b.shape:
            kind = "hwc"
        else:
            a, b = self.materialize(a, idx), self.materialize(b, idx)
        name = self.emit(idx, outs[0], [(hk_op, [a.name, b.name], None, None)], act, hk_op)
        self.vals[outs[0]] = Val(name, a.shape, kind)

    def op_ADD(self, idx, ins, outs, o):
        self._binary(idx, ins, outs, o, "ADD", "add")

    def op_MUL(self, idx, ins, outs, o):
        self._binary(idx, ins, outs, o, "MUL", "mul")

    def op_MEAN(self, idx, ins, outs, o):
        x = self.materialize(self.val(ins[0], "MEAN"), idx)
        axes = self.const(ins[1])
        axes = sorted({int(a) % 4 for a in axes.ravel()}) if axes is not None else None
        if len(x.shape) != 3 or axes != [1, 2]:
            raise TFLiteError(f"{self.where}: MEAN (operator {idx}) over axes {axes} of {list(self.tshape(ins[0]))}: "
                              "hilkit supports the mean over H and W of an image")
        keep = int(bool(o.keepDims)) if o is not None else 0
        self.out(outs[0], self.emit(idx, outs[0], [("mean", [x.name], {"keepdims": keep}, None)], None, "mean"))

    def op_PAD(self, idx, ins, outs, o):
        x = self.materialize(self.val(ins[0], "PAD"), idx)
        p = self.const(ins[1])
        if len(x.shape) != 3 or p is None or p.shape != (4, 2) or p[0].any() or p[3].any():
            raise TFLiteError(f"{self.where}: PAD (operator {idx}) with paddings {None if p is None else p.tolist()}: "
                              "hilkit pads H and W of an image")
        attrs = {"top": int(p[1, 0]), "bottom": int(p[1, 1]), "left": int(p[2, 0]), "right": int(p[2, 1])}
        self.out(outs[0], self.emit(idx, outs[0], [("pad", [x.name], attrs, None)], None, "pad"))

    def op_CONCATENATION(self, idx, ins, outs, o):
        xs = [self.materialize(self.val(i, "CONCATENATION"), idx) for i in ins]
        rank = len(self.tshape(ins[0]))
        axis = int(o.axis) % rank if o is not None else rank - 1
        if axis != rank - 1 or len({len(x.shape) for x in xs}) != 1:
            raise TFLiteError(f"{self.where}: CONCATENATION (operator {idx}) along axis {axis} of rank-{rank} "
                              "tensors: hilkit joins along channels (the last axis)")
        act = o.fusedActivationFunction if o is not None else 0
        if len(xs) == 1:
            raise TFLiteError(f"{self.where}: CONCATENATION (operator {idx}) of one tensor: not supported")
        self.out(outs[0], self.emit(idx, outs[0], [("concat", [x.name for x in xs], None, None)], act, "concat"))

    def out(self, ti: int, name: str) -> None:
        self.vals[ti] = Val(name, self.ir_shape(ti))


def _fold_gelu_sigmoid(graph: dict, arrays: dict) -> None:
    """mul(x, sigmoid(mul_const(x, 1.702))) -> gelu(approx=sigmoid), named as the final mul: what the
    exporter writes for hilkit's sigmoid GELU (TFLite's GELU has only the erf and tanh forms)."""
    layers = graph["layers"]
    by_name = {la["name"]: la for la in layers}

    def consumers(name):
        return [la for la in layers if name in la["inputs"]] + ([None] if graph["output"] == name else [])

    drop = set()
    for la in layers:
        if la["op"] != "mul":
            continue
        for x, s in (la["inputs"], la["inputs"][::-1]):
            sg = by_name.get(s)
            if sg is None or sg["op"] != "sigmoid" or len(consumers(s)) != 1:
                continue
            sc = by_name.get(sg["inputs"][0])
            if (sc is None or sc["op"] != "mul_const" or sc["inputs"] != [x] or len(consumers(sc["name"])) != 1
                    or not np.all(arrays[sc["params"]["value"]] == GELU_SIGMOID_K)):
                continue
            drop |= {sg["name"], sc["name"]}
            del arrays[sc["params"]["value"]]
            la.update({"op": "gelu", "inputs": [x], "attrs": {"approx": "sigmoid"}})
            break
    graph["layers"] = [la for la in layers if la["name"] not in drop]


def import_tflite(src, *, where: str | None = None) -> tuple[dict, dict]:
    """Read a .tflite file (path or bytes); return (graph, arrays) for `hilkit.models.modelfile`."""
    if isinstance(src, (bytes, bytearray)):
        data, where = bytes(src), where or "<tflite bytes>"
    else:
        p = Path(src)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise TFLiteError(f"{p}: cannot read: {e.strerror or e}") from None
        where = where or str(p)
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise TFLiteError(f"{p}: not a .tflite file (no TFL3 identifier)")
    return _Importer(data, where).run()
