"""Layers, operator math and optimizers: gradient checks, im2col vs loops, exact values."""
import math

import numpy as np
import pytest

from hilkit.models import functional as F
from hilkit.models.layers import (GELU, Add, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU,
                                  Sigmoid, Softmax, SoftmaxCrossEntropy)
from hilkit.models.network import Residual, Sequential
from hilkit.models.optim import SGD, Adam

EPS = 1e-6


def numerical_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences (f(x + e) - f(x - e)) / 2e of the scalar f() w.r.t. every entry of x,
    perturbing x in place."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        hi = f()
        flat[i] = old - EPS
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * EPS)
    return g


def away_from_kinks(x: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Move values off 0 (ReLU's kink), where a central difference is not a derivative."""
    return np.where(np.abs(x) < margin, margin * 10, x)


def grad_check(layer, x: np.ndarray, rng) -> None:
    """Compare backward() with central differences of L = sum(forward(x) * G), in float64, for
    the input and every parameter."""
    layer.astype(np.float64)
    x = x.astype(np.float64)
    y = layer.forward(x, train=True)
    G = rng.standard_normal(y.shape)
    dx = layer.backward(G)
    grads = {(id(m), k): m.grads[k].copy() for m, k in layer.parameters()}

    def loss():
        return float((layer.forward(x, train=True) * G).sum())

    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-5, atol=1e-7, err_msg="dL/dx")
    assert layer.parameters() or not grads
    for m, k in layer.parameters():
        np.testing.assert_allclose(grads[(id(m), k)], numerical_grad(loss, m.params[k]),
                                   rtol=1e-5, atol=1e-7, err_msg=f"dL/d{k} of {type(m).__name__}")


# ---------------------------------------------------------------- gradient checks
def test_dense_grad(rng):
    layer = Dense(5, 3, rng)
    assert layer.params["weight"].shape == (3, 5) and layer.params["weight"].dtype == np.float32
    grad_check(layer, rng.standard_normal((4, 5)), rng)


@pytest.mark.parametrize("k,stride,padding,h,w", [
    (3, 1, "same", 5, 6),
    (3, 2, "same", 5, 6),
    (3, 2, "valid", 7, 6),
    (2, 1, "same", 4, 5),     # even kernel: the extra padding row/column goes after
    (1, 1, "valid", 4, 4),
    (5, 3, "same", 6, 7),
])
def test_conv2d_grad(rng, k, stride, padding, h, w):
    layer = Conv2D(3, 4, k, rng, stride=stride, padding=padding)
    assert layer.params["weight"].shape == (4, 3, k, k)
    layer.params["bias"] = rng.standard_normal(4).astype(np.float32)
    grad_check(layer, rng.standard_normal((2, 3, h, w)), rng)


@pytest.mark.parametrize("size,stride,h,w", [(2, None, 4, 6), (3, 2, 7, 5), (2, None, 5, 5)])
def test_maxpool_grad(rng, size, stride, h, w):
    grad_check(MaxPool2D(size, stride), rng.standard_normal((2, 3, h, w)), rng)


@pytest.mark.parametrize("size,stride,h,w", [(2, None, 4, 6), (3, 2, 7, 5), (2, None, 5, 5)])
def test_avgpool_grad(rng, size, stride, h, w):
    grad_check(AvgPool2D(size, stride), rng.standard_normal((2, 3, h, w)), rng)


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), GELU("sigmoid"), GELU("tanh"), Softmax(), Flatten()],
                         ids=["relu", "sigmoid", "gelu-sigmoid", "gelu-tanh", "softmax", "flatten"])
def test_elementwise_grad(rng, layer):
    x = rng.standard_normal((3, 7)) * 2
    if isinstance(layer, Flatten):
        x = x.reshape(3, 7, 1)
    grad_check(layer, away_from_kinks(x), rng)


def test_add_grad(rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    G = rng.standard_normal((2, 3, 4))
    add = Add()
    np.testing.assert_array_equal(add(a, b), a + b)
    da, db = add.backward(G)
    loss = lambda: float((add(a, b) * G).sum())  # noqa: E731
    np.testing.assert_allclose(da, numerical_grad(loss, a), rtol=1e-6)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        add(a, b[:, :2])


def test_softmax_cross_entropy_grad(rng):
    z = rng.standard_normal((5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    ce = SoftmaxCrossEntropy()
    loss = ce.forward(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(5), y]).mean(), rel=1e-12)
    np.testing.assert_allclose(ce.backward(), numerical_grad(lambda: ce.forward(z, y), z), rtol=1e-6, atol=1e-9)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert SoftmaxCrossEntropy().forward(z, np.array([0])) == pytest.approx(0.0, abs=1e-6)
        assert SoftmaxCrossEntropy().forward(z, np.array([1])) == pytest.approx(1000.0, rel=1e-6)


def test_sequential_grad(rng):
    net = Sequential([Conv2D(2, 3, 3, rng), ReLU(), MaxPool2D(2), Conv2D(3, 2, 3, rng, stride=2),
                      GELU("tanh"), Flatten(), Dense(2 * 1 * 2, 3, rng)])
    grad_check(net, away_from_kinks(rng.standard_normal((2, 2, 4, 6))), rng)


def test_residual_grad(rng):
    block = Residual(Sequential([Dense(6, 6, rng), Sigmoid(), Dense(6, 6, rng)]))
    x = rng.standard_normal((3, 6))
    grad_check(block, x, rng)
    np.testing.assert_allclose(block(x), x + block.block(x))


# ---------------------------------------------------------------- conv2d against loops
def naive_conv2d(x, w, b, stride, pads):
    """The convolution sum written out, one output pixel at a time."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, hp, wp = xp.shape
    f, _, k, _ = w.shape
    ho, wo = (hp - k) // stride + 1, (wp - k) // stride + 1
    y = np.zeros((n, f, ho, wo))
    for i in range(n):
        for o in range(f):
            for r in range(ho):
                for s in range(wo):
                    patch = xp[i, :, r * stride:r * stride + k, s * stride:s * stride + k]
                    y[i, o, r, s] = b[o] + (patch * w[o]).sum()
    return y


@pytest.mark.parametrize("k,stride,padding,h,w,pads", [
    (3, 1, "same", 8, 8, (1, 1, 1, 1)),
    (3, 2, "same", 8, 7, (0, 1, 1, 1)),     # H: out 4, total 1 -> (0, 1); W: out 4, total 2
    (2, 1, "same", 5, 5, (0, 1, 0, 1)),
    (3, 1, "valid", 6, 5, (0, 0, 0, 0)),
    (4, 2, "valid", 9, 8, (0, 0, 0, 0)),
])
def test_conv2d_matches_loops(rng, k, stride, padding, h, w, pads):
    assert F.conv_padding(h, w, k, stride, padding) == pads
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    layer = Conv2D(3, 5, k, rng, stride=stride, padding=padding)
    layer.params["bias"] = rng.standard_normal(5).astype(np.float32)
    wgt, bias = layer.params["weight"], layer.params["bias"]
    want = naive_conv2d(x.astype(np.float64), wgt.astype(np.float64), bias.astype(np.float64), stride, pads)
    got = layer.forward(x)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.shape[2:] == (F.conv_output_size(h, k, stride, padding), F.conv_output_size(w, k, stride, padding))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(F.conv2d(x, wgt, bias, stride, padding), got)


def test_same_padding_follows_tensorflow():
    # TensorFlow/LiteRT: out = ceil(in / s), total = max((out - 1) s + k - in, 0), before = total // 2.
    assert F.same_padding(8, 3, 1) == (1, 1)
    assert F.same_padding(8, 3, 2) == (0, 1)
    assert F.same_padding(7, 3, 2) == (1, 1)
    assert F.same_padding(4, 2, 1) == (0, 1)
    assert F.same_padding(8, 1, 2) == (0, 0)


def test_pools_match_loops(rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    want_max = np.array([[[[x[n, c, 2 * r:2 * r + 3, 2 * s:2 * s + 3].max() for s in range(2)]
                           for r in range(3)] for c in range(3)] for n in range(2)])
    want_avg = np.array([[[[x[n, c, 2 * r:2 * r + 3, 2 * s:2 * s + 3].mean() for s in range(2)]
                           for r in range(3)] for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(MaxPool2D(3, 2).forward(x), want_max)
    np.testing.assert_allclose(AvgPool2D(3, 2).forward(x), want_avg, rtol=1e-6)
    assert F.maxpool2d(x, 2).shape == (2, 3, 3, 3)


# ---------------------------------------------------------------- forward values
def test_activation_values():
    x = np.array([-3.0, -0.5, 0.0, 1.0, 2.5])
    sig = np.array([1 / (1 + math.exp(-v)) for v in x])
    np.testing.assert_allclose(F.sigmoid(x), sig, rtol=1e-15)
    np.testing.assert_allclose(F.gelu(x, "sigmoid"), x / (1 + np.exp(-1.702 * x)), rtol=1e-15)
    tanh_form = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))) for v in x]
    np.testing.assert_allclose(F.gelu(x, "tanh"), tanh_form, rtol=1e-15)
    assert F.gelu(np.array([1.0]), "tanh")[0] == pytest.approx(0.8411920, abs=1e-7)
    np.testing.assert_array_equal(F.relu(x), [0, 0, 0, 1, 2.5])
    with pytest.raises(ValueError, match="unknown GELU"):
        F.gelu(x, "erf")


def test_functions_keep_float32_and_do_not_overflow():
    x = np.array([[-1000.0, -20.0, 0.0, 20.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for fn in (F.sigmoid, F.softmax, F.relu, lambda v: F.gelu(v, "sigmoid"), lambda v: F.gelu(v, "tanh")):
            y = fn(x)
            assert y.dtype == np.float32 and np.isfinite(y).all()
        np.testing.assert_array_equal(F.sigmoid(x)[0, [0, 2, 4]], [0.0, 0.5, 1.0])
    p = F.softmax(np.array([[1.0, 2.0, 3.0], [1001.0, 1002.0, 1003.0]]))
    np.testing.assert_allclose(p[0], p[1], rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_init_is_seeded():
    a = Conv2D(2, 4, 3, np.random.default_rng(7)).params["weight"]
    b = Conv2D(2, 4, 3, np.random.default_rng(7)).params["weight"]
    np.testing.assert_array_equal(a, b)
    # He init: std = sqrt(2 / fan_in), fan_in = 2 * 3 * 3
    big = Dense(400, 300, np.random.default_rng(0)).params["weight"]
    assert big.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)


# ---------------------------------------------------------------- optimizers
class Param:
    """The smallest thing an optimizer can drive: one parameter with a settable gradient."""

    def __init__(self, value):
        self.params = {"p": np.array(value, dtype=np.float64)}
        self.grads = {"p": np.zeros_like(self.params["p"])}


def test_sgd_momentum_values():
    m = Param([1.0])
    opt = SGD([(m, "p")], lr=0.1, momentum=0.9)
    m.grads["p"] = np.array([1.0])
    opt.step()
    assert m.params["p"][0] == pytest.approx(0.9)      # v = 1
    opt.step()
    assert m.params["p"][0] == pytest.approx(0.71)     # v = 0.9 + 1 = 1.9


def test_adam_first_steps_and_decay():
    m = Param([1.0, -2.0, 3.0])
    opt = Adam([(m, "p")], lr=0.01)
    m.grads["p"] = np.array([5.0, -0.001, 0.0])
    opt.step()
    # m_hat = g, v_hat = g^2: the first step is lr * sign(g)
    np.testing.assert_allclose(m.params["p"], [0.99, -1.99, 3.0], atol=1e-7)
    w = Param([2.0])
    opt = Adam([(w, "p")], lr=0.1, weight_decay=0.5)
    opt.step()                                          # zero gradient: only the decay acts
    assert w.params["p"][0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.1)],
                         ids=["sgd", "adam"])
def test_optimizers_minimise_a_quadratic(make):
    target = np.array([3.0, -1.0, 0.5])
    m = Param(np.zeros(3))
    opt = make([(m, "p")])
    for _ in range(300):
        m.grads["p"] = 2 * (m.params["p"] - target)
        opt.step()
    np.testing.assert_allclose(m.params["p"], target, atol=1e-3)
