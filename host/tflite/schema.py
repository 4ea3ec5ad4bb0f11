"""The TFLite flatbuffer schema and interpreter, from LiteRT (`ai-edge-litert`), and small helpers
shared by the importer and the exporter: operator names, tensor types, reading and writing buffers."""
from __future__ import annotations

import numpy as np

from hilkit.host.errors import HilkitError

INSTALL_HINT = "install it with `pip install 'hilkit[interchange]'` (or `pip install ai-edge-litert`)"


class TFLiteError(HilkitError):
    """A .tflite file hilkit cannot read or a model it cannot write as .tflite."""


def schema():
    """LiteRT's generated flatbuffer schema module (object API: ModelT, SubGraphT, ...)."""
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError:
        raise TFLiteError(f"reading and writing .tflite needs LiteRT (ai-edge-litert): {INSTALL_HINT}") from None
    return s


def interpreter_class():
    """LiteRT's Interpreter, falling back to tflite_runtime's where only that is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise TFLiteError(f"running .tflite needs LiteRT (ai-edge-litert): {INSTALL_HINT}") from None
    return Interpreter


def op_names() -> dict[int, str]:
    """{builtin operator code: name}, e.g. {3: "CONV_2D", ...}."""
    B = schema().BuiltinOperator
    return {v: k for k, v in vars(B).items() if k.isupper() and isinstance(v, int)}


def type_name(t: int) -> str:
    T = schema().TensorType
    return next((k for k, v in vars(T).items() if k.isupper() and v == t), str(t))


def opcode(code) -> int:
    """The builtin code of an OperatorCodeT: `builtinCode`, or the deprecated int8 field in older files."""
    return max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))


def as_str(v) -> str:
    if v is None:
        return ""
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT64": np.int64,
               "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "FLOAT64": np.float64}


def buffer_bytes(model, buf_index: int, file_bytes: bytes) -> bytes:
    """The raw bytes of buffer `buf_index` (inside the flatbuffer, or after it at offset/size)."""
    if buf_index <= 0 or buf_index >= len(model.buffers or []):
        return b""
    b = model.buffers[buf_index]
    if b.offset and b.offset > 1:
        return bytes(file_bytes[b.offset:b.offset + b.size])
    if b.data is None:
        return b""
    return np.asarray(b.data, dtype=np.uint8).tobytes()


def aligned_buffer(data: bytes):
    """A BufferT whose bytes start 16-byte aligned in the packed file (as TFLite's converter writes)."""
    s = schema()

    class AlignedBufferT(s.BufferT):
        def Pack(self, builder):
            off = None
            if data:
                builder.StartVector(1, len(data), 16)
                builder.head = builder.head - len(data)
                builder.Bytes[builder.head:builder.head + len(data)] = data
                off = builder.EndVector()
            s.BufferStart(builder)
            if off is not None:
                s.BufferAddData(builder, off)
            return s.BufferEnd(builder)

    return AlignedBufferT()
