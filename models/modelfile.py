"""Read, validate and write hilkit model files (`.npz`: graph JSON + float32 arrays).

The format is specified in docs/model-format.md. `load` checks everything the doc lists and
raises `ModelFileError` with one line saying what is wrong; `save` validates first and writes
atomically, so a failed save never leaves a half-written or invalid file. Files are written
byte-for-byte deterministically (fixed zip timestamps, sorted entries), so the same model always
has the same hash.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import opset
from .network import FORMAT, VERSION

GRAPH_KEY = "__graph__"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ModelFileError(ValueError):
    """The model file (or the graph and arrays given to `save`) is not a valid hilkit model."""


@dataclass
class LoadedModel:
    """A validated model. `graph` has every default filled in: each layer has `inputs`, `attrs`
    and `params`, and `output` is set. `shapes` maps "input" and each layer name to its output
    shape (batch excluded)."""

    graph: dict
    arrays: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    hash: str
    name: str
    path: str | None = None

    @property
    def layers(self) -> list[dict]:
        return self.graph["layers"]

    @property
    def output(self) -> str:
        return self.graph["output"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shapes["input"]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.output]

    def params(self, layer: dict) -> dict[str, np.ndarray]:
        """{role: array} of one layer of `graph["layers"]`."""
        return {role: self.arrays[key] for role, key in layer["params"].items()}


# ---------------------------------------------------------------- public API
def load(path) -> LoadedModel:
    """Read and validate a model file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelFileError(f"{p}: cannot read model file: {e.strerror or e}") from None
    try:
        graph, arrays = _read_archive(data)
        model = _validate(graph, arrays, default_name=p.stem)
    except ModelFileError as e:
        raise ModelFileError(f"{p}: {e}") from None
    model.hash = _hash(data)
    model.path = str(p)
    return model


def validate(graph: dict, arrays: dict) -> LoadedModel:
    """Validate an in-memory graph and arrays (floating arrays are cast to float32) without
    writing them; the hash is that of the file `save` would write."""
    model = _validate(graph, _as_float32(arrays), default_name="model")
    model.hash = _hash(to_bytes(model.graph, model.arrays))
    return model


def save(path, graph: dict, arrays: dict) -> LoadedModel:
    """Validate, then write atomically (temp file in the same folder + os.replace).
    Floating arrays are stored as float32. Returns the model as `load` would read it back."""
    model = _validate(graph, _as_float32(arrays), default_name=Path(path).stem)
    data = to_bytes(model.graph, model.arrays)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    model.hash = _hash(data)
    model.path = str(p)
    return model


def to_bytes(graph: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The .npz bytes of a model: `__graph__` first, then the arrays in name order, stored
    uncompressed with a fixed timestamp so equal models give equal bytes."""
    blob = np.frombuffer(json.dumps(graph, indent=1).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key, arr in [(GRAPH_KEY, blob)] + sorted(arrays.items()):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


# ---------------------------------------------------------------- reading
def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _as_float32(arrays: dict) -> dict[str, np.ndarray]:
    out = {}
    for key, value in arrays.items():
        a = np.asarray(value)
        if a.dtype.kind == "f":
            a = a.astype(np.float32, copy=False)
        out[key] = a
    return out


def _read_archive(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError("not a model file: not an .npz (zip) archive")
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        with npz:
            if GRAPH_KEY not in npz.files:
                raise ModelFileError(f"not a hilkit model file: the archive has no {GRAPH_KEY!r} entry")
            entries = {}
            for key in npz.files:
                try:
                    entries[key] = npz[key]
                except Exception as e:  # noqa: BLE001 - any unreadable entry is a bad file
                    raise ModelFileError(f"archive entry {key!r} is not a readable array: {_one_line(e)}") from None
    except ModelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt zip directory etc.
        raise ModelFileError(f"corrupt .npz archive: {_one_line(e)}") from None
    blob = entries.pop(GRAPH_KEY)
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ModelFileError(f"{GRAPH_KEY} must be a 1-D uint8 array of UTF-8 JSON, "
                             f"got {blob.dtype} with shape {list(blob.shape)}")
    try:
        graph = json.loads(blob.tobytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{GRAPH_KEY} is not UTF-8 text: {_one_line(e)}") from None
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{GRAPH_KEY} is not valid JSON: {_one_line(e)}") from None
    return graph, entries


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------- validation
def _validate(graph, arrays: dict[str, np.ndarray], default_name: str) -> LoadedModel:
    try:
        return _validate_graph(graph, arrays, default_name)
    except ModelFileError:
        raise
    except (TypeError, KeyError, AttributeError, IndexError, ValueError) as e:
        # A structure the checks below did not anticipate: still one clear line, never a traceback.
        raise ModelFileError(f"malformed graph: {_one_line(e)}") from None


def _fail(msg: str):
    raise ModelFileError(msg)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate_graph(graph, arrays: dict[str, np.ndarray], default_name: str) -> LoadedModel:
    if not isinstance(graph, dict):
        _fail(f"the graph must be a JSON object, got {type(graph).__name__}")
    if graph.get("format") != FORMAT:
        _fail(f"format is {graph.get('format')!r}, expected {FORMAT!r}: not a hilkit model file")
    version = graph.get("version")
    if not _is_int(version) or version < 1:
        _fail(f"version must be a positive integer, got {version!r}")
    if version > VERSION:
        _fail(f"model file version {version} is newer than this hilkit reads (version {VERSION}): upgrade hilkit")
    name = graph.get("name", default_name)
    if not isinstance(name, str) or not name:
        _fail(f"name must be a non-empty string, got {name!r}")

    inp = graph.get("input")
    if not isinstance(inp, dict):
        _fail("input must be an object with a shape, e.g. {\"name\": \"input\", \"shape\": [1, 8, 8]}")
    in_name = inp.get("name", "input")
    in_shape = inp.get("shape")
    if not isinstance(in_name, str) or not in_name:
        _fail(f"input name must be a non-empty string, got {in_name!r}")
    if (not isinstance(in_shape, list) or not in_shape
            or not all(_is_int(d) and d >= 1 for d in in_shape)):
        _fail(f"input shape must be a non-empty list of positive integers, got {in_shape!r}")
    shapes: dict[str, tuple[int, ...]] = {in_name: tuple(in_shape)}
    if in_name != "input":
        shapes["input"] = tuple(in_shape)

    layers = graph.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail("layers must be a non-empty list")
    out_layers, used = [], set()
    prev = in_name
    for i, layer in enumerate(layers):
        node, lname = _validate_layer(i, layer, prev, in_name, shapes, arrays)
        used.update(node["params"].values())
        out_layers.append(node)
        prev = lname

    extra = sorted(set(arrays) - used)
    if extra:
        _fail(f"array {extra[0]!r} is not used by any layer (extra arrays: {len(extra)})")

    output = graph.get("output", prev)
    if not isinstance(output, str) or output not in shapes or output == in_name:
        _fail(f"output {output!r} does not name a layer")
    meta = graph.get("meta", {})
    if not isinstance(meta, dict):
        _fail(f"meta must be an object, got {type(meta).__name__}")

    norm = dict(graph)
    norm.update({"format": FORMAT, "version": version, "name": name,
                 "input": {"name": in_name, "shape": list(in_shape)},
                 "layers": out_layers, "output": output, "meta": meta})
    return LoadedModel(graph=norm, arrays=dict(arrays), shapes=shapes, hash="", name=name)


def _validate_layer(i, layer, prev, in_name, shapes, arrays) -> tuple[dict, str]:
    if not isinstance(layer, dict):
        _fail(f"layers[{i}] must be an object, got {type(layer).__name__}")
    lname = layer.get("name")
    if not isinstance(lname, str) or not lname:
        _fail(f"layers[{i}] needs a non-empty string name")
    if lname in shapes:
        _fail(f"layer name {lname!r} is used twice" if lname != in_name
              else f"layer name {lname!r} is the graph input's name")
    op = layer.get("op")
    where = f"layer {lname!r} ({op})"
    if not isinstance(op, str) or op not in opset.OPS:
        _fail(f"layer {lname!r}: unknown op {op!r} (this hilkit knows: {', '.join(opset.OPS)})")

    inputs = layer.get("inputs")
    if inputs is None:
        inputs = [prev]
    if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        _fail(f"{where}: inputs must be a list of layer names, got {inputs!r}")
    for src in inputs:
        if src not in shapes:
            _fail(f"{where}: input {src!r} is not the graph input or an earlier layer")

    attrs = layer.get("attrs", {})
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        _fail(f"{where}: attrs must be an object, got {type(attrs).__name__}")
    try:
        attrs, out_shape, param_shapes = opset.check(op, attrs, [shapes[s] for s in inputs])
    except opset.OpError as e:
        _fail(f"{where}: {e}")

    params = layer.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        _fail(f"{where}: params must map parameter names to array names, got {params!r}")
    for role in param_shapes:
        if role not in params:
            _fail(f"{where}: missing parameter {role!r}")
    for role, key in params.items():
        if role not in param_shapes:
            _fail(f"{where}: unexpected parameter {role!r} ({op} has "
                  f"{', '.join(param_shapes) or 'no parameters'})")
        if key not in arrays:
            _fail(f"{where}: array {key!r} for parameter {role!r} is missing from the file")
        _check_array(key, arrays[key], param_shapes[role], where)

    shapes[lname] = tuple(out_shape)
    node = dict(layer)
    node.update({"name": lname, "op": op, "inputs": list(inputs), "attrs": attrs, "params": dict(params)})
    return node, lname


def _check_array(key: str, a: np.ndarray, shape: tuple[int, ...], where: str) -> None:
    if a.dtype != np.float32:
        _fail(f"array {key!r} is {a.dtype}; model files store float32")
    if a.shape != tuple(shape):
        _fail(f"array {key!r} has shape {list(a.shape)}, but {where} needs {list(shape)}")
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        _fail(f"array {key!r} has {bad} non-finite value(s) (NaN or inf)")
