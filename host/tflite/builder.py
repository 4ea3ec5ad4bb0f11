"""A small, general writer of .tflite files over LiteRT's flatbuffer object API.

    b = ModelBuilder()
    x = b.tensor("x", [1, 8, 8, 3], "int8", scale=0.02, zero_point=-3)
    w = b.const("w", w_int8, scale=w_scales, zero_point=0, quantized_dimension=0)
    y = b.tensor("y", [1, 8, 8, 4], "int8", scale=0.05, zero_point=1)
    b.op(B.CONV_2D, [x, w, bias], [y], *b.options("Conv2DOptions", padding=..., strideH=1, ...))
    data = b.finish(inputs=[x], outputs=[y])

Tensors are float32, int8, int32 (and the other TFLite numeric types), constant data goes into
16-byte aligned buffers, quantization is per tensor or per axis. `finish` writes one subgraph, a
SignatureDef ("serving_default") and optional metadata entries.
"""
from __future__ import annotations

import numpy as np

from .schema import TFLiteError, aligned_buffer, schema

# numpy dtype name -> TensorType member name
_TYPES = {"float32": "FLOAT32", "float16": "FLOAT16", "int32": "INT32", "int64": "INT64", "int8": "INT8",
          "uint8": "UINT8", "int16": "INT16", "float64": "FLOAT64", "bool": "BOOL"}


class ModelBuilder:
    """Collects tensors, buffers, operator codes and operators; `finish` packs them."""

    def __init__(self, description: str = "hilkit", version: int = 3):
        self.s = schema()
        self.description = description
        self.version = version
        self.tensors: list = []
        self.buffers: list = [self.s.BufferT()]   # buffer 0: the empty buffer every tensor without data uses
        self.ops: list = []
        self.codes: list = []
        self._code_index: dict[tuple[int, int], int] = {}
        self.metadata: list[tuple[str, bytes]] = []

    # ------------------------------------------------------------ tensors
    def tensor_type(self, dtype) -> int:
        name = _TYPES.get(np.dtype(dtype).name)
        if name is None:
            raise TFLiteError(f"tensor type {np.dtype(dtype).name} cannot be written to .tflite "
                              f"(supported: {', '.join(_TYPES)})")
        return getattr(self.s.TensorType, name)

    def quantization(self, scale, zero_point, quantized_dimension: int = 0):
        """A QuantizationParametersT: one scale/zero point per tensor or one per channel of an axis."""
        q = self.s.QuantizationParametersT()
        scale = np.atleast_1d(np.asarray(scale, np.float32))
        zp = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, np.int64))
        if zp.size == 1 and scale.size > 1:
            zp = np.repeat(zp, scale.size)
        if zp.size != scale.size:
            raise TFLiteError(f"quantization: {scale.size} scales but {zp.size} zero points")
        q.scale, q.zeroPoint, q.quantizedDimension = scale, zp, int(quantized_dimension)
        return q

    def tensor(self, name: str, shape, dtype="float32", data=None, *, scale=None, zero_point=None,
               quantized_dimension: int = 0, variable: bool = False) -> int:
        """Add a tensor (with constant `data` when given); returns its index."""
        t = self.s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = self.tensor_type(dtype)
        t.buffer = 0
        t.isVariable = bool(variable)
        if data is not None:
            arr = np.array(data, dtype=np.dtype(dtype), order="C")   # keeps 0-d shapes
            if tuple(arr.shape) != tuple(int(d) for d in shape):
                raise TFLiteError(f"tensor {name!r}: data shape {arr.shape} != declared shape {tuple(shape)}")
            self.buffers.append(aligned_buffer(arr.tobytes()))
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            t.quantization = self.quantization(scale, zero_point, quantized_dimension)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, data, dtype=None, **quant) -> int:
        """A constant tensor holding `data` (dtype defaults to the array's own)."""
        data = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
        return self.tensor(name, data.shape, data.dtype, data, **quant)

    # ------------------------------------------------------------ operators
    def operator_code(self, code: int, version: int = 1) -> int:
        key = (int(code), int(version))
        if key not in self._code_index:
            oc = self.s.OperatorCodeT()
            oc.builtinCode = int(code)
            # Readers before 2.3 look at the int8 field only; codes past 127 live in builtinCode.
            oc.deprecatedBuiltinCode = min(int(code), self.s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = int(version)
            self.codes.append(oc)
            self._code_index[key] = len(self.codes) - 1
        return self._code_index[key]

    def options(self, cls: str, **fields):
        """(BuiltinOptions type, options object) for e.g. options("Conv2DOptions", strideH=2)."""
        o = getattr(self.s, cls + "T")()
        for k, v in fields.items():
            if not hasattr(o, k):
                raise TFLiteError(f"{cls} has no field {k!r}")
            setattr(o, k, v)
        return getattr(self.s.BuiltinOptions, cls), o

    def op(self, code: int, inputs, outputs, opt_type: int = 0, options=None, *, version: int = 1) -> int:
        """Add an operator (inputs may hold -1 for an absent optional input); returns its index."""
        o = self.s.OperatorT()
        o.opcodeIndex = self.operator_code(code, version)
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType = opt_type
        o.builtinOptions = options
        self.ops.append(o)
        return len(self.ops) - 1

    def add_metadata(self, name: str, data: bytes) -> None:
        self.metadata.append((name, bytes(data)))

    # ------------------------------------------------------------ the file
    def _tensor_map(self, indices, names):
        out = []
        for i, n in zip(indices, names):
            m = self.s.TensorMapT()
            m.name, m.tensorIndex = n, int(i)
            out.append(m)
        return out

    def finish(self, inputs, outputs, *, subgraph_name: str = "main", signature_key: str = "serving_default",
               input_names=None, output_names=None) -> bytes:
        """Pack the model with one subgraph whose inputs/outputs are the given tensor indices."""
        import flatbuffers

        sg = self.s.SubGraphT()
        sg.name = subgraph_name
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs = np.asarray(inputs, np.int32)
        sg.outputs = np.asarray(outputs, np.int32)
        sig = self.s.SignatureDefT()
        sig.signatureKey = signature_key
        sig.subgraphIndex = 0
        sig.inputs = self._tensor_map(inputs, input_names or [self.tensors[i].name for i in inputs])
        sig.outputs = self._tensor_map(outputs, output_names or [self.tensors[i].name for i in outputs])
        buffers = list(self.buffers)
        mds = []
        for name, data in self.metadata:
            buffers.append(aligned_buffer(data))
            md = self.s.MetadataT()
            md.name, md.buffer = name, len(buffers) - 1
            mds.append(md)
        model = self.s.ModelT()
        model.version = self.version
        model.description = self.description
        model.operatorCodes, model.subgraphs, model.buffers = self.codes, [sg], buffers
        model.signatureDefs = [sig]
        model.metadata = mds or None
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
