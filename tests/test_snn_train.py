"""SNN training: ANN-to-SNN conversion accuracy, the STDB surrogate and its backpropagation
through time (checked against finite differences), the spike-count loss, and the recipes."""
from __future__ import annotations

import numpy as np
import pytest

from hilkit.models import modelfile, reference, snn, snn_train
from hilkit.models.recipes import RECIPES
from hilkit.models.snn_convert import ConversionError, FloatSNN, convert, quantize
from hilkit.models.snn_recipes import digits_data, train_ann


def _accuracy(fsnn, X, y, **opts):
    attrs, params = quantize(fsnn, **opts)
    res = snn.simulate(attrs, params, X)
    return float((res.output.argmax(1) == y).mean()), res


# ---------------------------------------------------------------- conversion
@pytest.mark.parametrize("arch,epochs", [("mlp", 60), ("cnn", 15)])
def test_conversion_accuracy_bound(arch, epochs):
    """Threshold-balanced conversion with soft reset stays within 1 point of the ANN at T = 32."""
    X_train, _, X_test, y_test = digits_data(arch)
    ann, ann_acc = train_ann(arch, 0, epochs=epochs)
    fsnn = convert(ann, X_train, X_train.shape[1:], percentile=99.9)
    assert all(t == 1.0 for t in fsnn.thresholds.values())
    acc, res = _accuracy(fsnn, X_test, y_test, timesteps=32, reset="soft")
    assert acc >= ann_acc - 0.01, (acc, ann_acc)
    assert res.counters["synops"].min() > 0
    # spikes scale with the time steps: a rate code
    _, res8 = _accuracy(fsnn, X_test, y_test, timesteps=8, reset="soft")
    ratio = res.counters["synops"].mean() / res8.counters["synops"].mean()
    assert 3.5 < ratio < 4.5


def test_conversion_balances_thresholds_and_rejects_max_pooling(rng):
    from hilkit.models.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
    from hilkit.models.network import Sequential
    net = Sequential([Dense(4, 3, rng), ReLU(), Dense(3, 2, rng)])
    X = rng.uniform(0, 1, (50, 4)).astype(np.float32)
    f = convert(net, X, (4,), percentile=100)
    lam = float(np.maximum(net[0].forward(X), 0).max())
    assert f.lambdas["l0"] == pytest.approx(lam)
    np.testing.assert_allclose(f.weights["l0.weight"], net[0].params["weight"] / lam, rtol=1e-6)
    np.testing.assert_allclose(f.weights["l1.weight"], net[2].params["weight"] * lam, rtol=1e-6)
    bad = Sequential([Conv2D(1, 2, 3, rng), ReLU(), MaxPool2D(2), Flatten(), Dense(2 * 4 * 4, 2, rng)])
    with pytest.raises(ConversionError, match="max pooling"):
        convert(bad, rng.uniform(0, 1, (4, 1, 8, 8)), (1, 8, 8))


# ---------------------------------------------------------------- surrogate gradient
def test_surrogate_depends_on_steps_since_the_last_spike():
    I = np.array([[0.625, 0.1]] * 5, np.float32)                       # [T=5, N=2]; neuron 1 never fires
    S, G = snn_train.neurons_forward(I, 5, 1.0, 0.0, 1.0, "soft", 0.3, 0.5)
    # u: 0.625, 1.25 -> spike (0.25), 0.875, 1.5 -> spike (0.5), 1.125 -> spike
    assert S[:, 0].tolist() == [0, 1, 0, 1, 1] and S[:, 1].tolist() == [0] * 5
    # the authors' convention (last spike time -1000: exp underflows): no slope before the first
    # spike, and so none at the first spike itself; then dt = steps since the last spike before t
    np.testing.assert_allclose(G[:, 0], 0.3 * np.exp(-0.5 * np.array([np.inf, np.inf, 1, 2, 1])), rtol=1e-6)
    assert np.all(G[:, 1] == 0)
    # the ablation: dt counted from step 0 before any spike, so the silent neuron gets a slope
    _, G0 = snn_train.neurons_forward(I, 5, 1.0, 0.0, 1.0, "soft", 0.3, 0.5, before_first_spike="from_start")
    np.testing.assert_allclose(G0[:, 0], 0.3 * np.exp(-0.5 * np.array([0, 1, 1, 2, 1])), rtol=1e-6)
    np.testing.assert_allclose(G0[:, 1], 0.3 * np.exp(-0.5 * np.arange(5)), rtol=1e-6)
    np.testing.assert_allclose(snn_train.surrogate(np.array([0, 1, 2]), 0.3, 0.5, theta=2.0),
                               0.15 * np.exp(-0.5 * np.array([0, 1, 2])), rtol=1e-6)
    with pytest.raises(ValueError, match="before_first_spike"):
        snn_train.neurons_forward(I, 5, 1.0, 0.0, 1.0, "soft", 0.3, 0.5, before_first_spike="zero")


@pytest.mark.parametrize("before_first_spike,silent_grad", [("none", False), ("from_start", True)])
def test_silent_neurons_get_no_gradient(before_first_spike, silent_grad, rng):
    """A hidden neuron that never fires passes no gradient to its input weights (the authors'
    convention), from the cross-entropy or from the spike-count term; under the ablation it does."""
    w0 = rng.normal(0.3, 0.5, (4, 3))
    b0 = np.array([0.2, 0.3, -50.0, 0.1])                             # neuron 2 can never reach theta
    fsnn = FloatSNN((3,), [{"type": "dense", "units": 4}, {"type": "dense", "units": 2}],
                    {"l0.weight": w0, "l0.bias": b0, "l1.weight": rng.normal(0, 1, (2, 4)), "l1.bias": np.zeros(2)},
                    {"l0": 1.0})
    cfg = snn_train.STDBConfig(timesteps=6, v_init="zero", beta=0.3, before_first_spike=before_first_spike)
    net = snn_train.SpikingNet(fsnn, cfg)
    x = rng.uniform(0, 1, (8, 3)).astype(np.float32)
    net.forward(x, train=True)
    S, _ = net.cache[0]
    assert S[:, :, 2].sum() == 0 and S[:, :, [0, 1, 3]].sum() > 0
    net.backward(rng.normal(0, 1, (8, 2)).astype(np.float32), spike_weight=1.0)
    g = net.stages[0][1].grads["weight"]
    assert np.any(g[[0, 1, 3]] != 0)
    assert np.any(g[2] != 0) == silent_grad


def _pseudo_loss(params, x, y, S0, G0, cfg, theta, n_neurons, spike_weight):
    """The network with its spike decisions frozen (S0) and each spike linearised around the
    forward pass with the surrogate slope: s~_t = S_t + G_t (u_t - u*_t). Its exact gradient is
    what BPTT with the STDB surrogate and a detached reset must compute."""
    w0, b0, w1, b1 = params
    T = cfg.timesteps
    I = x @ w0.T + b0
    u = np.full(I.shape, theta / 2 if cfg.v_init == "half" else 0.0)
    us = []
    for t in range(T):
        u = cfg.leak * u + I
        us.append(u)
        u = u - theta * S0[t] if cfg.reset == "soft" else u * (1 - S0[t])
    return us, lambda u_star: _loss_from(us, u_star, S0, G0, w1, b1, y, T, n_neurons, spike_weight)


def _loss_from(us, u_star, S0, G0, w1, b1, y, T, n_neurons, spike_weight):
    st = [S0[t] + G0[t] * (us[t] - u_star[t]) for t in range(T)]
    logits = sum(s @ w1.T + b1 for s in st) / T
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    ce = -logp[np.arange(len(y)), y].mean()
    return ce + spike_weight * sum(s.sum() for s in st) / (len(y) * T * n_neurons)


@pytest.mark.parametrize("before_first_spike", snn_train.BEFORE_FIRST_SPIKE)
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_bptt_matches_finite_differences(reset, before_first_spike, rng):
    cfg = snn_train.STDBConfig(timesteps=6, reset=reset, v_init="half", leak=0.9, alpha=0.3, beta=0.2,
                               before_first_spike=before_first_spike)
    w0 = rng.normal(0.3, 0.8, (5, 4))
    fsnn = FloatSNN((4,), [{"type": "dense", "units": 5}, {"type": "dense", "units": 3}],
                    {"l0.weight": w0, "l0.bias": rng.normal(0, 0.2, 5),
                     "l1.weight": rng.normal(0, 1, (3, 5)), "l1.bias": rng.normal(0, 0.1, 3)}, {"l0": 1.0})
    x = rng.uniform(0, 1, (7, 4)).astype(np.float32)
    y = rng.integers(0, 3, 7)
    net = snn_train.SpikingNet(fsnn, cfg)
    logits = net.forward(x, train=True)
    S0, G0 = (a.astype(np.float64) for a in net.cache[0])
    assert 0 < S0.mean() < 1, "some neurons spike, some do not"
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    spike_weight = 0.7
    net.backward(d / len(y), spike_weight=spike_weight)
    grads = [net.stages[0][1].grads["weight"], net.stages[0][1].grads["bias"],
             net.stages[1][1].grads["weight"], net.stages[1][1].grads["bias"]]

    base = [fsnn.weights[k].astype(np.float64) for k in ("l0.weight", "l0.bias", "l1.weight", "l1.bias")]
    x64 = x.astype(np.float64)
    u_star, _ = _pseudo_loss(base, x64, y, S0, G0, cfg, 1.0, 5, spike_weight)
    eps = 1e-6
    for i, g in enumerate(grads):
        num = np.zeros_like(base[i])
        for idx in np.ndindex(base[i].shape):
            vals = []
            for sgn in (1, -1):
                pp = [b.copy() for b in base]
                pp[i][idx] += sgn * eps
                _, f = _pseudo_loss(pp, x64, y, S0, G0, cfg, 1.0, 5, spike_weight)
                vals.append(f(u_star))
            num[idx] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=2e-3, atol=2e-6)


# ---------------------------------------------------------------- training
def test_stdb_and_spike_count_loss_on_the_mlp():
    """A few epochs: STDB keeps the converted accuracy; the spike term cuts spikes."""
    X_train, y_train, X_test, y_test = digits_data("mlp")
    ann, ann_acc = train_ann("mlp", 0, epochs=30)
    fsnn = convert(ann, X_train, (64,))
    kw = dict(timesteps=4, epochs=3, lr=1e-3)
    plain, hist = snn_train.train(fsnn, X_train, y_train, snn_train.STDBConfig(**kw), np.random.default_rng(0))
    sparse, hist_s = snn_train.train(fsnn, X_train, y_train, snn_train.STDBConfig(**kw, spike_weight=1.0),
                                     np.random.default_rng(0))
    assert [h["spike_weight"] for h in hist_s] == pytest.approx([1 / 3, 2 / 3, 1.0])
    acc_p, res_p = _accuracy(plain, X_test, y_test, timesteps=4)
    acc_s, res_s = _accuracy(sparse, X_test, y_test, timesteps=4)
    assert acc_p >= ann_acc - 0.02
    assert res_s.counters["spikes_l0"].mean() < 0.8 * res_p.counters["spikes_l0"].mean()
    assert acc_s >= acc_p - 0.05


def test_snn_recipe_writes_a_valid_model(tmp_path):
    calls = []
    out = tmp_path / "s.npz"
    summary = RECIPES["digits-snn-stdb"](out, seed=0, epochs=1, progress=lambda *a: calls.append(a))
    assert [c[:2] for c in calls][-2:] == [(60, 61), (61, 61)]
    m = modelfile.load(out)
    assert [layer["op"] for layer in m.layers] == ["spiking_net", "softmax"]
    attrs = m.layers[0]["attrs"]
    assert attrs["timesteps"] == 8 and attrs["reset"] == "soft" and attrs["coding"] == "direct"
    assert m.graph["meta"]["recipe"] == "digits-snn-stdb" and m.graph["meta"]["stdb"]["epochs"] == 1
    assert m.graph["meta"]["stdb"]["before_first_spike"] == "none"
    _, _, X_test, y_test = digits_data("cnn")
    acc = float((reference.predict(m, X_test) == y_test).mean())
    assert acc == pytest.approx(summary["test_accuracy"]) and acc > 0.9
    assert summary["spikes_per_inference"] > 0 and summary["synops_per_inference"] > summary["spikes_per_inference"]


@pytest.mark.slow
def test_snn_recipes_are_deterministic(tmp_path):
    a = RECIPES["digits-snn-sparse"](tmp_path / "a.npz", seed=1, epochs=1)
    b = RECIPES["digits-snn-sparse"](tmp_path / "b.npz", seed=1, epochs=1)
    assert a["hash"] == b["hash"] and (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
