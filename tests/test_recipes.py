"""The digits split and the training recipes (real training, few epochs except one slow test)."""
import numpy as np
import pytest

from hilkit.models import modelfile, reference
from hilkit.models.data import as_images, digits_split
from hilkit.models.recipes import RECIPES

SUMMARY_KEYS = {"recipe", "test_accuracy", "train_seconds", "epochs", "params", "hash", "path", "seed"}


# ---------------------------------------------------------------- data
def test_digits_split_sizes_and_values():
    X_train, y_train, X_test, y_test = digits_split()
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert X_train.dtype == X_test.dtype == np.float32
    assert X_train.min() == 0.0 and X_train.max() == 1.0 and X_test.max() <= 1.0
    # the raw pixels are integers 0..16
    np.testing.assert_array_equal(X_test * 16, np.round(X_test * 16))
    assert as_images(X_test).shape == (360, 1, 8, 8)
    np.testing.assert_array_equal(as_images(X_test)[3, 0, 2], X_test[3, 16:24])


def test_digits_split_is_stratified_and_fixed():
    X_train, y_train, X_test, y_test = digits_split()
    total = np.bincount(y_train, minlength=10) + np.bincount(y_test, minlength=10)
    assert total.sum() == 1797
    # every class is split 80/20 to within one sample
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.2 * total) <= 1)
    again = digits_split()
    np.testing.assert_array_equal(again[2], X_test)
    np.testing.assert_array_equal(again[3], y_test)
    # callers get their own copies
    X_test[:] = -1
    assert digits_split()[2].min() == 0.0
    # exactly scikit-learn's split with the documented arguments
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    _, Xt, _, yt = train_test_split(d.data, d.target, test_size=0.2, stratify=d.target, random_state=0)
    np.testing.assert_array_equal(again[3], yt)
    np.testing.assert_array_equal(again[2], (Xt / 16).astype(np.float32))


# ---------------------------------------------------------------- recipes
def test_recipe_registry():
    assert {"digits-mlp", "digits-cnn"} <= set(RECIPES)


def test_digits_mlp_trains_and_writes_a_valid_model(tmp_path):
    calls = []
    out = tmp_path / "mlp.npz"
    summary = RECIPES["digits-mlp"](out, seed=0, epochs=10, progress=lambda *a: calls.append(a))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["recipe"] == "digits-mlp" and summary["epochs"] == 10
    assert summary["params"] == 64 * 32 + 32 + 32 * 10 + 10
    # 10 epochs reach about 95 %; chance is 10 %
    assert summary["test_accuracy"] >= 0.92
    assert summary["train_seconds"] < 20
    # progress: once per epoch, 1-based, with the epoch's mean loss and training accuracy
    assert [c[:2] for c in calls] == [(e, 10) for e in range(1, 11)]
    assert calls[-1][2] < calls[0][2] and 0.9 < calls[-1][3] <= 1.0

    m = modelfile.load(out)
    assert m.hash == summary["hash"]
    assert [layer["op"] for layer in m.layers] == ["dense", "relu", "dense", "softmax"]
    assert m.output == m.layers[-1]["name"] and m.input_shape == (64,) and m.output_shape == (10,)
    assert m.graph["meta"]["recipe"] == "digits-mlp"
    # the stored accuracy is what the float32 reference measures on the written file
    _, _, X_test, y_test = digits_split()
    acc = float((reference.predict(m, X_test) == y_test).mean())
    assert acc == pytest.approx(summary["test_accuracy"]) == pytest.approx(m.graph["meta"]["test_accuracy"], abs=1e-6)


def test_recipes_are_deterministic(tmp_path):
    a = RECIPES["digits-mlp"](tmp_path / "a.npz", seed=3, epochs=2)
    b = RECIPES["digits-mlp"](tmp_path / "b.npz", seed=3, epochs=2)
    c = RECIPES["digits-mlp"](tmp_path / "c.npz", seed=4, epochs=2)
    assert a["hash"] == b["hash"] and (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert c["hash"] != a["hash"]


def test_digits_mlp_full_recipe_accuracy(tmp_path):
    summary = RECIPES["digits-mlp"](tmp_path / "mlp.npz")
    assert summary["test_accuracy"] >= 0.95


def test_digits_cnn_graph(tmp_path):
    summary = RECIPES["digits-cnn"](tmp_path / "cnn.npz", epochs=2)
    m = modelfile.load(tmp_path / "cnn.npz")
    assert [layer["op"] for layer in m.layers] == ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d",
                                                   "flatten", "dense", "softmax"]
    conv1, conv2 = m.layers[0], m.layers[3]
    assert conv1["attrs"] == {"filters": 8, "kernel": 3, "stride": 1, "padding": "same"}
    assert conv2["attrs"]["filters"] == 16 and m.layers[2]["attrs"] == {"size": 2, "stride": 2}
    assert m.input_shape == (1, 8, 8) and m.shapes[m.layers[6]["name"]] == (64,)
    assert summary["params"] == (8 * 9 + 8) + (16 * 8 * 9 + 16) + (10 * 64 + 10)
    assert summary["test_accuracy"] > 0.5


@pytest.mark.slow
def test_digits_cnn_full_recipe_accuracy(tmp_path):
    summary = RECIPES["digits-cnn"](tmp_path / "cnn.npz")
    assert summary["test_accuracy"] >= 0.97
    assert summary["train_seconds"] < 60
