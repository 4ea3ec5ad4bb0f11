"""Model files: round trip, validation errors, atomic save, and the float32 reference forward."""
import copy
import hashlib
import json
import zipfile

import numpy as np
import pytest

from hilkit.models import modelfile, reference
from hilkit.models.layers import (GELU, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid,
                                  Softmax)
from hilkit.models.modelfile import ModelFileError
from hilkit.models.network import Residual, Sequential


def write_npz(path, graph, arrays=None):
    """Write a model file by hand (np.savez), independent of modelfile.save; `graph` may be a
    dict (JSON-encoded) or raw bytes."""
    blob = graph if isinstance(graph, bytes) else json.dumps(graph).encode()
    np.savez(path, __graph__=np.frombuffer(blob, dtype=np.uint8), **(arrays or {}))
    return path


def small_model():
    """conv 3x3 same -> relu -> flatten -> dense 3 -> softmax, on a [1, 4, 4] input."""
    rng = np.random.default_rng(0)
    graph = {
        "format": "hilkit-model", "version": 1, "name": "tiny",
        "input": {"name": "input", "shape": [1, 4, 4]},
        "layers": [
            {"name": "conv1", "op": "conv2d", "inputs": ["input"],
             "attrs": {"filters": 2, "kernel": 3, "stride": 1, "padding": "same"},
             "params": {"weight": "conv1.weight", "bias": "conv1.bias"}},
            {"name": "relu1", "op": "relu"},
            {"name": "flat", "op": "flatten"},
            {"name": "dense1", "op": "dense", "attrs": {"units": 3},
             "params": {"weight": "dense1.weight", "bias": "dense1.bias"}},
            {"name": "softmax", "op": "softmax"},
        ],
        "output": "softmax",
        "meta": {"test_accuracy": 0.5, "anything": [1, 2]},
    }
    arrays = {"conv1.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
              "conv1.bias": rng.standard_normal(2).astype(np.float32),
              "dense1.weight": rng.standard_normal((3, 32)).astype(np.float32),
              "dense1.bias": rng.standard_normal(3).astype(np.float32)}
    return graph, arrays


# ---------------------------------------------------------------- round trip
def test_load_hand_written_file(tmp_path):
    graph, arrays = small_model()
    m = modelfile.load(write_npz(tmp_path / "tiny.npz", graph, arrays))
    assert m.name == "tiny"
    assert m.hash == hashlib.sha256((tmp_path / "tiny.npz").read_bytes()).hexdigest()[:16]
    assert m.shapes == {"input": (1, 4, 4), "conv1": (2, 4, 4), "relu1": (2, 4, 4), "flat": (32,),
                        "dense1": (3,), "softmax": (3,)}
    # defaults filled in: omitted inputs mean the previous layer; every layer has attrs and params
    assert [layer["inputs"] for layer in m.graph["layers"]] == [["input"], ["conv1"], ["relu1"], ["flat"], ["dense1"]]
    assert m.graph["layers"][1]["attrs"] == {} and m.graph["layers"][1]["params"] == {}
    assert m.graph["meta"] == graph["meta"]
    assert m.output == "softmax" and m.output_shape == (3,) and m.input_shape == (1, 4, 4)
    for k, a in arrays.items():
        assert m.arrays[k].dtype == np.float32
        np.testing.assert_array_equal(m.arrays[k], a)


def test_save_load_round_trip_is_byte_stable(tmp_path):
    graph, arrays = small_model()
    saved = modelfile.save(tmp_path / "a.npz", graph, arrays)
    loaded = modelfile.load(tmp_path / "a.npz")
    assert saved.hash == loaded.hash == hashlib.sha256((tmp_path / "a.npz").read_bytes()).hexdigest()[:16]
    assert loaded.graph == saved.graph and loaded.shapes == saved.shapes
    assert modelfile.validate(graph, arrays).hash == saved.hash
    # saving the loaded model again gives the same bytes (fixed zip timestamps, sorted entries)
    again = modelfile.save(tmp_path / "b.npz", loaded.graph, loaded.arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert again.hash == saved.hash
    # any weight change changes the hash
    arrays2 = dict(arrays, **{"conv1.bias": arrays["conv1.bias"] + 1})
    assert modelfile.save(tmp_path / "c.npz", graph, arrays2).hash != saved.hash
    # np.load reads it as a plain npz too
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(["__graph__", *arrays])


def test_save_casts_float64_and_creates_folders(tmp_path):
    graph, arrays = small_model()
    arrays = {k: v.astype(np.float64) for k, v in arrays.items()}
    m = modelfile.save(tmp_path / "sub" / "dir" / "m.npz", graph, arrays)
    assert all(a.dtype == np.float32 for a in modelfile.load(m.path).arrays.values())


def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    graph, arrays = small_model()
    path = tmp_path / "m.npz"
    modelfile.save(path, graph, arrays)
    before = path.read_bytes()
    bad = copy.deepcopy(graph)
    bad["layers"][0]["op"] = "conv3d"
    with pytest.raises(ModelFileError, match="unknown op 'conv3d'"):
        modelfile.save(path, bad, arrays)
    assert path.read_bytes() == before

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(modelfile.os, "replace", broken_replace)
    arrays2 = dict(arrays, **{"conv1.bias": arrays["conv1.bias"] * 2})
    with pytest.raises(OSError, match="disk full"):
        modelfile.save(path, graph, arrays2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# ---------------------------------------------------------------- validation errors
def mutate(fn):
    """A bad-file case: apply fn(graph, arrays) to a fresh valid model."""
    def make():
        graph, arrays = small_model()
        fn(graph, arrays)
        return graph, arrays
    return make


def set_layer(i, **kw):
    return mutate(lambda g, a: g["layers"][i].update(kw))


def set_attr(i, key, value):
    return mutate(lambda g, a: g["layers"][i].setdefault("attrs", {}).__setitem__(key, value))


def drop_attr(i, key):
    return mutate(lambda g, a: g["layers"][i]["attrs"].pop(key))


def set_array(key, value):
    return mutate(lambda g, a: a.__setitem__(key, value))


def _nan(g, a):
    a["dense1.weight"][1, 2] = np.nan


def _inf(g, a):
    a["conv1.bias"][0] = np.inf


BAD_GRAPHS = {
    "wrong format": (mutate(lambda g, a: g.update(format="onnx")), "format is 'onnx', expected 'hilkit-model'"),
    "newer version": (mutate(lambda g, a: g.update(version=2)), "version 2 is newer than this hilkit reads"),
    "bad version": (mutate(lambda g, a: g.update(version="1")), "version must be a positive integer"),
    "no input": (mutate(lambda g, a: g.pop("input")), "input must be an object"),
    "bad input shape": (mutate(lambda g, a: g["input"].update(shape=[1, 0, 4])), "input shape must be"),
    "no layers": (mutate(lambda g, a: g.update(layers=[])), "layers must be a non-empty list"),
    "layer not object": (mutate(lambda g, a: g["layers"].insert(0, "conv")), "layers[0] must be an object"),
    "unknown op": (set_layer(1, op="swish"), "layer 'relu1': unknown op 'swish'"),
    "undefined input": (set_layer(3, inputs=["nope"]), "layer 'dense1' (dense): input 'nope' is not the graph input or an earlier layer"),
    "later input": (set_layer(1, inputs=["dense1"]), "input 'dense1' is not the graph input or an earlier layer"),
    "duplicate name": (set_layer(2, name="relu1"), "layer name 'relu1' is used twice"),
    "missing array": (mutate(lambda g, a: a.pop("dense1.bias")), "array 'dense1.bias' for parameter 'bias' is missing"),
    "missing param": (mutate(lambda g, a: (g["layers"][3]["params"].pop("bias"), a.pop("dense1.bias"))),
                      "layer 'dense1' (dense): missing parameter 'bias'"),
    "unexpected param": (mutate(lambda g, a: (g["layers"][1].update(params={"gamma": "relu1.gamma"}),
                                              a.update({"relu1.gamma": np.ones(1, np.float32)}))),
                         "layer 'relu1' (relu): unexpected parameter 'gamma' (relu has no parameters)"),
    "extra array": (set_array("stray", np.zeros(3, np.float32)), "array 'stray' is not used by any layer"),
    "wrong shape": (set_array("dense1.weight", np.zeros((3, 31), np.float32)),
                    "array 'dense1.weight' has shape [3, 31], but layer 'dense1' (dense) needs [3, 32]"),
    "units vs weight": (set_attr(3, "units", 4), "array 'dense1.weight' has shape [3, 32], but layer 'dense1' (dense) needs [4, 32]"),
    "wrong dtype": (set_array("conv1.weight", np.zeros((2, 1, 3, 3), np.float64)),
                    "array 'conv1.weight' is float64; model files store float32"),
    "int dtype": (set_array("conv1.bias", np.zeros(2, np.int32)), "array 'conv1.bias' is int32"),
    "nan": (mutate(_nan), "array 'dense1.weight' has 1 non-finite value(s)"),
    "inf": (mutate(_inf), "array 'conv1.bias' has 1 non-finite value(s)"),
    "kernel > input": (mutate(lambda g, a: (g["layers"][0]["attrs"].update(kernel=5, padding="valid"),
                                            a.update({"conv1.weight": np.zeros((2, 1, 5, 5), np.float32)}))),
                       "layer 'conv1' (conv2d): conv2d window 5x5 is larger than its 4x4 input"),
    "pool > input": (mutate(lambda g, a: g["layers"].insert(2, {"name": "pool", "op": "maxpool2d", "attrs": {"size": 5}})),
                     "layer 'pool' (maxpool2d): maxpool2d window 5x5 is larger than its 4x4 input"),
    "zero stride": (set_attr(0, "stride", 0), "attribute 'stride' must be >= 1, not 0"),
    "string units": (set_attr(3, "units", "3"), "attribute 'units' must be an integer, not '3'"),
    "bool kernel": (set_attr(0, "kernel", True), "attribute 'kernel' must be an integer"),
    "bad padding": (set_attr(0, "padding", "full"), "attribute 'padding' must be one of same, valid, not 'full'"),
    "bad exp": (set_attr(4, "exp", "fast"), "attribute 'exp' must be one of libm, quake1, quake2"),
    "bad gelu": (set_layer(1, op="gelu", attrs={"approx": "erf"}), "attribute 'approx' must be one of sigmoid, tanh"),
    "unknown attr": (set_attr(1, "alpha", 0.1), "unknown attribute 'alpha' for relu"),
    "missing attr": (drop_attr(3, "units"), "layer 'dense1' (dense): dense needs attribute 'units'"),
    "dense on image": (mutate(lambda g, a: g["layers"].pop(2)), "dense needs a 1-D input, got [2, 4, 4]: put a flatten layer before it"),
    "softmax on image": (set_layer(4, inputs=["relu1"]), "softmax needs a 1-D input, got [2, 4, 4]"),
    "add shapes": (mutate(lambda g, a: g["layers"].append({"name": "sum", "op": "add", "inputs": ["dense1", "flat"]})),
                   "add needs two inputs of equal shape, got [3] and [32]"),
    "add one input": (mutate(lambda g, a: g["layers"].append({"name": "sum", "op": "add"})), "add takes 2 input(s), got 1"),
    "bad output": (mutate(lambda g, a: g.update(output="logits")), "output 'logits' does not name a layer"),
    "bad meta": (mutate(lambda g, a: g.update(meta=[1])), "meta must be an object"),
    "params not names": (set_layer(0, params={"weight": 3, "bias": "conv1.bias"}), "params must map parameter names to array names"),
}


@pytest.mark.parametrize("case", list(BAD_GRAPHS), ids=list(BAD_GRAPHS))
def test_bad_graph_is_rejected(tmp_path, case):
    make, message = BAD_GRAPHS[case]
    graph, arrays = make()
    path = write_npz(tmp_path / "bad.npz", graph, arrays)
    with pytest.raises(ModelFileError) as e:
        modelfile.load(path)
    msg = str(e.value)
    assert message in msg
    assert msg.startswith(str(path) + ": ") and "\n" not in msg
    # save refuses the same model and writes nothing (it casts float64 to float32, so that one saves)
    if case != "wrong dtype":
        with pytest.raises(ModelFileError) as e:
            modelfile.save(tmp_path / "out.npz", graph, arrays)
        assert message in str(e.value)
    assert not (tmp_path / "out.npz").exists()


def _pickled_entry(path):
    graph, _ = small_model()
    write_npz(path, graph)
    with zipfile.ZipFile(path, "a") as z:
        import io
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        z.writestr("conv1.weight.npy", buf.getvalue())


BAD_FILES = {
    "text file": (lambda p: p.write_text("hello"), "not an .npz (zip) archive"),
    "npy file": (lambda p: np.save(open(p, "wb"), np.zeros(3)), "not an .npz (zip) archive"),
    "truncated": (lambda p: p.write_bytes(modelfile.to_bytes(*small_model())[:300]), "not an .npz (zip) archive"),
    "no graph": (lambda p: np.savez(p, weights=np.zeros(3, np.float32)), "the archive has no '__graph__' entry"),
    "bad json": (lambda p: write_npz(p, b'{"format": "hilkit-model",'), "__graph__ is not valid JSON"),
    "not utf-8": (lambda p: write_npz(p, b'\xff\xfe{}'), "__graph__ is not UTF-8"),
    "json not object": (lambda p: write_npz(p, b"[1, 2]"), "the graph must be a JSON object, got list"),
    "graph dtype": (lambda p: np.savez(p, __graph__=np.zeros(4, np.float32)), "__graph__ must be a 1-D uint8 array"),
    "pickled array": (_pickled_entry, "archive entry 'conv1.weight' is not a readable array"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_file_is_rejected(tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(ModelFileError) as e:
        modelfile.load(path)
    assert message in str(e.value) and str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read model file"):
        modelfile.load(tmp_path / "nope.npz")
    assert issubclass(ModelFileError, ValueError)


# ---------------------------------------------------------------- reference forward
def every_op_model(rng):
    """A trainable net that exports every version-1 op (conv2d, both pools, relu, gelu x2, sigmoid,
    flatten, dense, add, softmax)."""
    return Sequential([
        Conv2D(2, 4, 3, rng, padding="same"), ReLU(), AvgPool2D(2),
        Conv2D(4, 3, 2, rng, stride=2, padding="same"), GELU("tanh"), MaxPool2D(2, 1),
        Flatten(), Dense(3, 8, rng),
        Residual(Sequential([Dense(8, 8, rng), GELU("sigmoid"), Dense(8, 8, rng), Sigmoid()])),
        Dense(8, 5, rng), Softmax(),
    ])


def test_reference_runs_every_op_like_the_layers(tmp_path, rng):
    net = every_op_model(rng)
    for m, k in net.parameters():                   # nonzero biases, so a dropped bias shows
        if k == "bias":
            m.params[k] = rng.standard_normal(m.params[k].shape).astype(np.float32) * 0.1
    graph, arrays = net.to_graph([2, 8, 6], name="all-ops", meta={"note": "test"})
    model = modelfile.save(tmp_path / "all.npz", graph, arrays)
    ops = [layer["op"] for layer in model.layers]
    assert set(ops) == {"conv2d", "relu", "avgpool2d", "gelu", "maxpool2d", "flatten", "dense", "sigmoid",
                        "add", "softmax"}
    add = model.layers[ops.index("add")]
    assert add["inputs"][0] == "dense1" and add["inputs"][1] == "sigmoid1"
    assert model.shapes["conv2"] == (3, 2, 2) and model.shapes["maxpool1"] == (3, 1, 1)

    X = rng.standard_normal((16, 2, 8, 6)).astype(np.float32)
    out = reference.forward(tmp_path / "all.npz", X)
    assert out.dtype == np.float32 and out.shape == (16, 5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    # float32 reference vs the training layers run in float64
    want = net.astype(np.float64).forward(X.astype(np.float64))
    assert np.abs(out - want).max() < 1e-6
    trace = reference.forward_trace(model, X)
    assert list(trace) == ["input", *[layer["name"] for layer in model.layers]]
    assert all(v.dtype == np.float32 and v.shape[1:] == model.shapes[k] for k, v in trace.items())
    np.testing.assert_array_equal(trace[model.output], out)


def test_reference_input_shapes(tmp_path):
    graph, arrays = small_model()
    model = modelfile.validate(graph, arrays)
    X = np.random.default_rng(0).random((5, 16), dtype=np.float32)
    np.testing.assert_array_equal(reference.forward(model, X), reference.forward(model, X.reshape(5, 1, 4, 4)))
    assert reference.predict(model, X).shape == (5,)
    with pytest.raises(ValueError, match=r"needs \[N, 1, 4, 4\] \(or \[N, 16\]\)"):
        reference.forward(model, X[:, :15])
