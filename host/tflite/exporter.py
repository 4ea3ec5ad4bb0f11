"""hilkit model file -> .tflite (float32), written with LiteRT's flatbuffer schema object API.

Layout: hilkit's [C, H, W] values become NHWC tensors [1, H, W, C], vectors [N] become [1, N].
A `flatten` of an image whose consumers are all `dense` is written as a RESHAPE (H, W, C order) with
the dense weight columns permuted to match, which is what a converter would produce; any other
flatten of an image gets a TRANSPOSE to NCHW first. A ReLU-family activation whose only producer is a
layer with a fused-activation field (conv, dense, pools, add, mul, concat) is fused into it; the
output tensor is then named "layer;activation", so an import gives back both layer names. hilkit's
sigmoid GELU (x * sigmoid(1.702 x)) has no TFLite op and is written as MUL, LOGISTIC, MUL. The
model's name and meta travel in the file's metadata entry "hilkit" (JSON).
"""
from __future__ import annotations

import json

import numpy as np

from hilkit.core.version import VERSION
from hilkit.core.files import write_atomic  # noqa: F401  (re-exported for tflite.export_file)

from .importer import GELU_SIGMOID_K, hwc_perm
from .schema import TFLiteError, aligned_buffer, schema
from .tokens import TokenOps

FUSABLE = {"conv2d", "dense", "dwconv2d", "maxpool2d", "avgpool2d", "add", "mul", "concat"}
ACT_CODES = {"relu": 1, "relu1": 2, "relu6": 3, "tanh": 4}


def tfl_shape(shape) -> list[int]:
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        c, h, w = shape
        return [1, h, w, c]
    return [1, *shape]


class _Exporter(TokenOps):
    def __init__(self, model):
        self.s = schema()
        self.m = model
        self.tensors, self.buffers, self.ops, self.codes = [], [self.s.BufferT()], [], []
        self.code_index: dict[int, int] = {}
        self.tensor_of: dict[str, int] = {}
        self.hwc: dict[str, tuple[int, int, int]] = {}  # flatten layers written in H, W, C order

    # ------------------------------------------------------------ building blocks
    def tensor(self, name: str, shape, data: np.ndarray | None = None, dtype=np.float32) -> int:
        t = self.s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = self.s.TensorType.INT32 if dtype == np.int32 else self.s.TensorType.FLOAT32
        t.buffer = 0
        if data is not None:
            self.buffers.append(aligned_buffer(np.ascontiguousarray(data, dtype=dtype).tobytes()))
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, dtype=np.float32) -> int:
        data = np.asarray(data, dtype=dtype)
        return self.tensor(name, data.shape, data, dtype)

    def op(self, code: int, inputs: list[int], outputs: list[int], opt_type: int = 0, options=None) -> None:
        if code not in self.code_index:
            oc = self.s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, self.s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = 1
            self.codes.append(oc)
            self.code_index[code] = len(self.codes) - 1
        o = self.s.OperatorT()
        o.opcodeIndex = self.code_index[code]
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType = opt_type
        o.builtinOptions = options
        self.ops.append(o)

    def options(self, cls: str, **fields):
        o = getattr(self.s, cls + "T")()
        for k, v in fields.items():
            setattr(o, k, v)
        return getattr(self.s.BuiltinOptions, cls), o

    # ------------------------------------------------------------ the graph
    def consumers(self, name: str) -> list[dict]:
        return [la for la in self.m.layers if name in la["inputs"]]

    def run(self) -> bytes:
        m = self.m
        B = self.s.BuiltinOperator
        in_name = m.graph["input"]["name"]
        self.tensor_of[in_name] = self.tensor(in_name, tfl_shape(m.input_shape))
        fused: dict[str, dict] = {}   # producer name -> fused activation layer
        skip: set[str] = set()
        for la in m.layers:
            if la["op"] in ACT_CODES and len(la["inputs"]) == 1:
                src = la["inputs"][0]
                prod = next((p for p in m.layers if p["name"] == src), None)
                if (prod is not None and prod["op"] in FUSABLE and src != m.output and src not in fused
                        and len(self.consumers(src)) == 1 and not (prod["op"] == "concat" and la["op"] == "tanh")):
                    fused[src] = la
                    skip.add(la["name"])
        for la in m.layers:
            if la["name"] in skip:
                continue
            act = fused.get(la["name"])
            out_name = la["name"] + (";" + act["name"] if act else "")
            out_t = self.tensor(out_name, tfl_shape(m.shapes[(act or la)["name"]]))
            code = ACT_CODES[act["op"]] if act else 0
            handler = getattr(self, "op_" + la["op"], None)
            if handler is None:
                raise TFLiteError(f"layer {la['name']!r}: op {la['op']!r} has no .tflite equivalent "
                                  "(hilkit exports float models built from: "
                                  f"{', '.join(sorted(k[3:] for k in dir(self) if k.startswith('op_')))})")
            handler(la, [self.tensor_of[i] for i in la["inputs"]], out_t, code)
            self.tensor_of[la["name"]] = out_t
            if act:
                self.tensor_of[act["name"]] = out_t
        return self.finish(B)

    def finish(self, B) -> bytes:
        import flatbuffers

        m = self.m
        sg = self.s.SubGraphT()
        sg.name = "main"
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs = np.asarray([self.tensor_of[m.graph["input"]["name"]]], np.int32)
        sg.outputs = np.asarray([self.tensor_of[m.output]], np.int32)
        # Per-layer exp variants (QuAKE) have no TFLite field: they travel with the name and meta.
        exps = {la["name"]: la["attrs"]["exp"] for la in m.layers if "exp" in la.get("attrs", {})}
        info = json.dumps({"name": m.name, "meta": m.graph.get("meta", {}), "exp": exps, "hilkit": VERSION,
                           "model_hash": m.hash}).encode("utf-8")
        self.buffers.append(aligned_buffer(info))
        md = self.s.MetadataT()
        md.name, md.buffer = "hilkit", len(self.buffers) - 1
        model = self.s.ModelT()
        model.version = 3
        model.description = f"hilkit {VERSION}: {m.name}"
        model.operatorCodes, model.subgraphs, model.buffers, model.metadata = self.codes, [sg], self.buffers, [md]
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    # ------------------------------------------------------------ operators
    def _bias(self, la) -> np.ndarray:
        return self.m.arrays[la["params"]["bias"]]

    def _padding(self, la) -> int:
        return self.s.Padding.SAME if la["attrs"].get("padding", "same") == "same" else self.s.Padding.VALID

    def op_conv2d(self, la, ins, out, act):
        w = self.m.arrays[la["params"]["weight"]].transpose(0, 2, 3, 1)      # [F, C, k, k] -> [F, k, k, C]
        wt = self.const(f"{la['name']}.weight", w)
        bt = self.const(f"{la['name']}.bias", self._bias(la))
        s = int(la["attrs"]["stride"])
        self.op(self.s.BuiltinOperator.CONV_2D, [ins[0], wt, bt], [out], *self.options(
            "Conv2DOptions", padding=self._padding(la), strideH=s, strideW=s, dilationHFactor=1, dilationWFactor=1,
            fusedActivationFunction=act))

    def op_dwconv2d(self, la, ins, out, act):
        w = self.m.arrays[la["params"]["weight"]].transpose(1, 2, 0)[None]  # [C*m, k, k] -> [1, k, k, C*m]
        wt = self.const(f"{la['name']}.weight", w)
        bt = self.const(f"{la['name']}.bias", self._bias(la))
        s = int(la["attrs"]["stride"])
        self.op(self.s.BuiltinOperator.DEPTHWISE_CONV_2D, [ins[0], wt, bt], [out], *self.options(
            "DepthwiseConv2DOptions", padding=self._padding(la), strideH=s, strideW=s,
            depthMultiplier=int(la["attrs"]["multiplier"]), dilationHFactor=1, dilationWFactor=1,
            fusedActivationFunction=act))

    def op_dense(self, la, ins, out, act):
        w = self.m.arrays[la["params"]["weight"]]
        src = la["inputs"][0]
        if src in self.hwc:  # the flatten before this layer was written in H, W, C order
            w = w[:, hwc_perm(*self.hwc[src])]
        wt = self.const(f"{la['name']}.weight", w)
        bt = self.const(f"{la['name']}.bias", self._bias(la))
        self.op(self.s.BuiltinOperator.FULLY_CONNECTED, [ins[0], wt, bt], [out],
                *self.options("FullyConnectedOptions", fusedActivationFunction=act))

    def _pool(self, la, ins, out, act, code):
        k, s = int(la["attrs"]["size"]), int(la["attrs"]["stride"])
        self.op(code, [ins[0]], [out], *self.options(
            "Pool2DOptions", padding=self.s.Padding.VALID, strideH=s, strideW=s, filterHeight=k, filterWidth=k,
            fusedActivationFunction=act))

    def op_maxpool2d(self, la, ins, out, act):
        self._pool(la, ins, out, act, self.s.BuiltinOperator.MAX_POOL_2D)

    def op_avgpool2d(self, la, ins, out, act):
        self._pool(la, ins, out, act, self.s.BuiltinOperator.AVERAGE_POOL_2D)

    def op_flatten(self, la, ins, out, act):
        shape = self.m.shapes[la["inputs"][0]]
        n = int(np.prod(shape))
        shape_t = self.const(f"{la['name']}.shape", np.array([1, n]), np.int32)
        if len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1:
            cons = self.consumers(la["name"])
            if cons and la["name"] != self.m.output and all(c["op"] == "dense" for c in cons):
                self.hwc[la["name"]] = tuple(shape)
            else:  # the exact C, H, W order: transpose to NCHW, then flatten
                perm = self.const(f"{la['name']}.perm", np.array([0, 3, 1, 2]), np.int32)
                c, h, w = shape
                mid = self.tensor(f"{la['name']}/nchw", [1, c, h, w])
                self.op(self.s.BuiltinOperator.TRANSPOSE, [ins[0], perm], [mid],
                        *self.options("TransposeOptions"))
                ins = [mid]
        self.op(self.s.BuiltinOperator.RESHAPE, [ins[0], shape_t], [out],
                *self.options("ReshapeOptions", newShape=[1, n]))

    def op_flatten_hwc(self, la, ins, out, act):
        n = int(np.prod(self.m.shapes[la["name"]]))
        shape_t = self.const(f"{la['name']}.shape", np.array([1, n]), np.int32)
        self.op(self.s.BuiltinOperator.RESHAPE, [ins[0], shape_t], [out],
                *self.options("ReshapeOptions", newShape=[1, n]))

    def _unary(self, code, ins, out):
        self.op(code, [ins[0]], [out])

    def op_relu(self, la, ins, out, act):
        self._unary(self.s.BuiltinOperator.RELU, ins, out)

    def op_relu6(self, la, ins, out, act):
        self._unary(self.s.BuiltinOperator.RELU6, ins, out)

    def op_relu1(self, la, ins, out, act):
        self._unary(self.s.BuiltinOperator.RELU_N1_TO_1, ins, out)

    def op_tanh(self, la, ins, out, act):
        self._unary(self.s.BuiltinOperator.TANH, ins, out)

    def op_sigmoid(self, la, ins, out, act):
        self._unary(self.s.BuiltinOperator.LOGISTIC, ins, out)

    def op_softmax(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.SOFTMAX, [ins[0]], [out], *self.options("SoftmaxOptions", beta=1.0))

    def op_gelu_erf(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.GELU, [ins[0]], [out], *self.options("GeluOptions", approximate=False))

    def op_gelu(self, la, ins, out, act):
        if la["attrs"].get("approx", "sigmoid") == "tanh":
            self.op(self.s.BuiltinOperator.GELU, [ins[0]], [out], *self.options("GeluOptions", approximate=True))
            return
        # x * sigmoid(1.702 x), in the order hilkit's reference computes it (so the numbers agree).
        B, name, shape = self.s.BuiltinOperator, la["name"], tfl_shape(self.m.shapes[la["name"]])
        k = self.const(f"{name}.k", np.array([GELU_SIGMOID_K]))
        scaled, sig = self.tensor(f"{name}/scaled", shape), self.tensor(f"{name}/sigmoid", shape)
        self.op(B.MUL, [ins[0], k], [scaled], *self.options("MulOptions"))
        self.op(B.LOGISTIC, [scaled], [sig])
        self.op(B.MUL, [ins[0], sig], [out], *self.options("MulOptions"))

    def op_add(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.ADD, ins[:2], [out], *self.options("AddOptions", fusedActivationFunction=act))

    def op_mul(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.MUL, ins[:2], [out], *self.options("MulOptions", fusedActivationFunction=act))

    def _const_operand(self, la) -> int:
        v = self.m.arrays[la["params"]["value"]]
        if v.ndim == 3:
            v = v.transpose(1, 2, 0)
        return self.const(f"{la['name']}.value", v[None])

    def op_add_const(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.ADD, [ins[0], self._const_operand(la)], [out],
                *self.options("AddOptions", fusedActivationFunction=act))

    def op_mul_const(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.MUL, [ins[0], self._const_operand(la)], [out],
                *self.options("MulOptions", fusedActivationFunction=act))

    def op_mean(self, la, ins, out, act):
        axes = self.const(f"{la['name']}.axes", np.array([1, 2]), np.int32)
        self.op(self.s.BuiltinOperator.MEAN, [ins[0], axes], [out],
                *self.options("ReducerOptions", keepDims=bool(la["attrs"].get("keepdims", 0))))

    def op_pad(self, la, ins, out, act):
        a = la["attrs"]
        p = np.array([[0, 0], [a["top"], a["bottom"]], [a["left"], a["right"]], [0, 0]])
        pt = self.const(f"{la['name']}.paddings", p, np.int32)
        self.op(self.s.BuiltinOperator.PAD, [ins[0], pt], [out], *self.options("PadOptions"))

    def op_concat(self, la, ins, out, act):
        rank = len(tfl_shape(self.m.shapes[la["name"]]))
        self.op(self.s.BuiltinOperator.CONCATENATION, ins, [out], *self.options(
            "ConcatenationOptions", axis=rank - 1, fusedActivationFunction=act))


def export_tflite(model) -> bytes:
    """The .tflite bytes of a hilkit model (a LoadedModel or a model file path)."""
    from hilkit.models import modelfile

    if not isinstance(model, modelfile.LoadedModel):
        model = modelfile.load(model)
    try:
        return _Exporter(model).run()
    except TFLiteError as e:
        raise TFLiteError(f"{model.path or model.name}: {e}") from None
