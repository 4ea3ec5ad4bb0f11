"""Filter pruning (models/pruning.py), the digits-cnn-wide recipe, and the code generator's choice of
conv kernel: structured removal computes what masking computes, the schedules prune what they say,
training MACs are counted from the network as it shrinks, and a pruned or sparse model's C agrees
with the reference (host, ASan/UBSan)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hilkit.codegen import ir, passes
from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.codegen.ops_sparse import block_weights, conv_geometry, density, sparse_arrays
from hilkit.models import data, modelfile, pruning, reference
from hilkit.models.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, SoftmaxCrossEntropy
from hilkit.models.network import Sequential
from hilkit.models.optim import Adam
from hilkit.models.recipes import RECIPES, digits_cnn_wide
from helpers import ROOT, SANITIZE, STRICT, run_cc

SHAPE = (1, 8, 8)


def small_net(rng, f1=6, f2=8):
    return Sequential([Conv2D(1, f1, 3, rng), ReLU(), MaxPool2D(2), Conv2D(f1, f2, 3, rng), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(f2 * 4, 10, rng)])


def test_macs_of_digits_cnn_wide(rng):
    net = digits_cnn_wide(rng)
    # conv1 64 px * 32 * 9 + conv2 16 px * 64 * 32 * 9 + dense 256 * 10
    assert pruning.forward_macs(net, SHAPE) == 18432 + 294912 + 2560 == 315904
    assert pruning.training_macs_per_sample(net, SHAPE) == 3 * 315904
    assert pruning.filter_counts(net) == [32, 64]


@pytest.mark.parametrize("index", [0, 3])
def test_removing_filters_computes_what_masking_computes(rng, index):
    net = small_net(rng)
    for layer in net.layers:  # nonzero biases: a masked filter must still output exactly zero
        if layer.params:
            layer.params["bias"][:] = rng.standard_normal(layer.params["bias"].shape)
    x = rng.random((5, *SHAPE)).astype(np.float32)
    conv = net.layers[index]
    n = conv.params["weight"].shape[0]
    keep = np.array(sorted(rng.choice(n, size=n // 2, replace=False)))
    drop = np.setdiff1d(np.arange(n), keep)
    conv.params["weight"][drop] = 0
    conv.params["bias"][drop] = 0
    masked = net.forward(x)
    opt = Adam(net.parameters(), lr=1e-3)
    pruning.remove_filters(net, index, keep, SHAPE, optimizer=opt)
    assert net.layers[index].params["weight"].shape[0] == keep.size
    np.testing.assert_allclose(net.forward(x), masked, rtol=1e-5, atol=1e-6)
    # The optimizer's moments follow the parameters, and training goes on.
    for (layer, key), m, v in zip(opt.params, opt.m, opt.v):
        assert m.shape == v.shape == layer.params[key].shape
    ce = SoftmaxCrossEntropy()
    ce.forward(net.forward(x, train=True), np.arange(5))
    net.backward(ce.backward())
    opt.step()


def test_rankings(rng):
    net = small_net(rng)
    w = net.layers[0].params["weight"]
    w[2] *= 0.01                       # the smallest L1 norm
    w[4] = -np.abs(w[4]) * 10          # the largest L1 norm, but it never fires after the ReLU ...
    net.layers[0].params["bias"][4] = -100.0   # ... so its mean activation is zero
    x = np.random.default_rng(0).random((32, *SHAPE)).astype(np.float32)
    l1 = pruning.filter_scores(net, 0, "l1", rng=rng)
    assert l1.argmin() == 2 and l1.argmax() == 4
    act = pruning.filter_scores(net, 0, "mean-act", rng=rng, act_means=pruning.activation_means(net, x))
    assert act.argmin() == 4 and act[4] == 0.0
    r1 = pruning.filter_scores(net, 0, "random", rng=np.random.default_rng(5))
    r2 = pruning.filter_scores(net, 0, "random", rng=np.random.default_rng(5))
    assert np.array_equal(r1, r2)
    with pytest.raises(pruning.PruningError):
        pruning.filter_scores(net, 0, "l2", rng=rng)


def test_while_training_schedule_steps_to_the_target(rng):
    net = digits_cnn_wide(rng)
    targets = [pruning.kept_filters(n, 0.8) for n in (32, 64)]
    assert targets == [6, 13]
    seen = [pruning.filter_counts(net)]
    while pruning.filter_counts(net) != targets:
        pruning.prune_filters(net, targets, 0.3, "l1", input_shape=SHAPE, rng=rng)
        seen.append(pruning.filter_counts(net))
    # ceil(0.3 * remaining) per step, never below the target
    assert [s[0] for s in seen] == [32, 22, 15, 10, 7, 6]
    assert [s[1] for s in seen] == [64, 44, 30, 21, 14, 13]
    assert net.layers[-1].params["weight"].shape == (10, 13 * 4)
    assert pruning.forward_macs(net, SHAPE) == 64 * 6 * 9 + 16 * 13 * 6 * 9 + 13 * 4 * 10


def test_fit_pruned_counts_training_macs_from_the_shrinking_network(rng):
    X, y, _, _ = data.digits_split()
    X, y = data.as_images(X[:128]), y[:128]
    results = {}
    for schedule in ("while-training", "then-retrain"):
        net = small_net(np.random.default_rng(0), f1=8, f2=8)
        cfg = pruning.PruneConfig(method="l1", fraction=0.5, schedule=schedule, every=1, start=1, step=0.3,
                                  retrain_epochs=2)
        res = pruning.fit_pruned(net, X, y, Adam(net.parameters(), lr=1e-2), epochs=4, batch_size=64,
                                 rng=np.random.default_rng(1), lr_schedule=lambda e: 1e-2, input_shape=SHAPE,
                                 config=cfg)
        assert res.final_filters == [4, 4] == pruning.filter_counts(net)
        assert res.training_macs == sum(h["macs"] for h in res.history)
        for h in res.history:  # each epoch is charged for the network it trained
            assert h["macs"] % len(X) == 0
        results[schedule] = res
    pwt, ptr = results["while-training"], results["then-retrain"]
    assert [e["epoch"] for e in pwt.events] == [1, 2]          # 8 -> 5 -> 4
    assert pwt.events[0]["after"] == [5, 5]
    assert len(ptr.history) == 6 and [e["epoch"] for e in ptr.events] == [4]
    assert pwt.training_macs < 0.6 * ptr.training_macs


def test_magnitude_masks_and_masked_training(rng):
    net = small_net(rng)
    masks = pruning.magnitude_masks(net, 0.25)
    for i, m in masks.items():
        w = net.layers[i].params["weight"]
        assert m.sum() == round(0.25 * w.size)
        assert np.abs(w[m]).min() >= np.abs(w[~m]).max()
    pruning.apply_masks(net, masks)
    X, y, _, _ = data.digits_split()
    opt = pruning.MaskedOptimizer(Adam(net.parameters(), lr=1e-2), net, masks)
    from hilkit.models.train import fit
    fit(net, data.as_images(X[:64]), y[:64], opt, epochs=1, batch_size=32, rng=rng)
    # The zeros stayed zero through the optimizer steps.
    assert pruning.conv_density(net) == [m.sum() / m.size for m in masks.values()]


def test_bad_requests():
    with pytest.raises(pruning.PruningError):
        pruning.PruneConfig(method="l1", fraction=1.0).validate()
    with pytest.raises(pruning.PruningError):
        pruning.PruneConfig(method="median").validate()
    with pytest.raises(ValueError):
        RECIPES["digits-cnn-wide"]("unused.npz", epochs=1, prune="l1", prune_fraction=1.5)


# ---------------------------------------------------------------- codegen: blocked and sparse layouts
def test_weight_layouts(rng):
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    wb = block_weights(w)
    # block 0: filters 0..3, tap t of filter j at t * 4 + j; block 1: filters 4, 5 at 72 + t * 2 + j
    assert wb[5 * 4 + 2] == w[2].ravel()[5] and wb[72 + 7 * 2 + 1] == w[5].ravel()[7]
    g = conv_geometry((2, 4, 4), (6, 4, 4), 3, 1, "same")
    assert (g.padded, g.cs, g.rs, g.scratch) == (True, 36, 6, 72)
    w[:, :, 1, :] = 0
    values, offsets, starts = sparse_arrays(w, g)
    assert starts[-1] == values.size == np.count_nonzero(w) == 6 * 2 * 6
    assert offsets[:3].tolist() == [0, 1, 2] and offsets[3] == 2 * 6  # row 1 of the kernel is gone
    assert density(w) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory):
    """digits-cnn-wide trained briefly (3 epochs): 50 %-L1 pruned while training, and sparse (15 %
    conv weight density after 2 epochs of magnitude pruning)."""
    d = tmp_path_factory.mktemp("wide")
    kws = {"l1": {"prune": "l1", "prune_fraction": 0.5, "prune_every": 1},
           "sparse": {"density": 0.15, "retrain_epochs": 2}}
    return {name: (d / f"{name}.npz", RECIPES["digits-cnn-wide"](d / f"{name}.npz", epochs=3, **kw))
            for name, kw in kws.items()}


def test_wide_recipe_writes_smaller_dense_convs(wide_models):
    path, summary = wide_models["l1"]
    m = modelfile.load(path)
    convs = [layer for layer in m.layers if layer["op"] == "conv2d"]
    assert [c["attrs"]["filters"] for c in convs] == [16, 32] == summary["pruning_filters"]
    assert m.arrays["conv2.weight"].shape == (32, 16, 3, 3)
    assert m.arrays["dense1.weight"].shape == (10, 32 * 4)
    info = m.graph["meta"]["pruning"]
    assert info["method"] == "l1" and info["fraction"] == 0.5 and info["events"]
    assert summary["forward_macs"] == 64 * 16 * 9 + 16 * 32 * 16 * 9 + 128 * 10
    # Pruned at the end of epochs 2 (32 -> 22 filters, 64 -> 44) and 3 (-> 16, 32): epochs 1-2 at full size.
    assert [e["after"] for e in info["events"]] == [[22, 44], [16, 32]]
    assert summary["pruning_training_macs"] == 3 * 1437 * (2 * 315904 + (64 * 22 * 9 + 16 * 44 * 22 * 9 + 176 * 10))


def _driver(gen_dir, exe):
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen_dir}"]
    run_cc(["gcc", *STRICT, *SANITIZE, "-O0", *inc, str(gen_dir / "model.c"), str(ROOT / "tests" / "c" / "model_driver.c"),
            "-o", str(exe), "-lm"])


@pytest.mark.parametrize("name", ["l1", "sparse"])
def test_pruned_models_agree_with_reference_under_sanitizers(name, wide_models, tmp_path):
    path, summary = wide_models[name]
    g = generate(path, "host", tmp_path / "gen")
    ops = [n.op for n in g.graph.nodes if n.op.startswith("conv2d")]
    src = (tmp_path / "gen" / "model.c").read_text()
    if name == "sparse":
        assert summary["pruning_conv_density"] == pytest.approx([0.15, 0.15], abs=0.01)
        assert ops == ["conv2d_sparse", "conv2d_sparse"]
        assert "hk_conv2d_sparse_f32(" in src and "static const uint16_t conv2_offset[" in src
        assert "sparse: " in src
    else:
        assert ops == ["conv2d", "conv2d"] and "hk_conv2d_blocked_f32(" in src
        assert "static const float conv1_weight[144]" in src
    _driver(tmp_path / "gen", tmp_path / "drv")
    m = modelfile.load(path)
    _, _, x, _ = data.digits_split()
    x = x[:120].reshape((-1, *SHAPE)).astype(np.float32)
    p = subprocess.run([str(tmp_path / "drv")], input=x.tobytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    out = np.frombuffer(p.stdout, np.float32).reshape(len(x), -1)
    ref = reference.forward(m, x).reshape(len(x), -1)
    assert np.array_equal(out.argmax(1), ref.argmax(1))
    assert np.max(np.abs(out - ref)) <= 1e-4


def test_kernel_choice_follows_the_crossover(wide_models):
    path, _ = wide_models["sparse"]
    m = modelfile.load(path)
    ops = lambda c: [n.op for n in passes.choose_conv_kernels(passes.fuse_relu(ir.from_model(m)), c).nodes
                     if n.op.startswith("conv2d")]
    assert ops(0.0) == ["conv2d", "conv2d"]
    assert ops(passes.SPARSE_CROSSOVER) == ["conv2d_sparse", "conv2d_sparse"]
    assert ops(0.1) == ["conv2d", "conv2d"]
    g = passes.run_default(ir.from_model(m))
    assert all(n.fused_relu for n in g.nodes if n.op == "conv2d_sparse")
    # Per board: the dense kernel runs on NEON on Cortex-A, so sparse must be sparser to win there.
    assert passes.sparse_crossover("mps2-an386") == passes.sparse_crossover(None) == passes.SPARSE_CROSSOVER
    assert passes.sparse_crossover("rpi4") == passes.sparse_crossover("rpi2") == passes.SPARSE_CROSSOVER_NEON
    assert passes.SPARSE_CROSSOVER_NEON < passes.SPARSE_CROSSOVER


def test_cli_train_with_pruning(tmp_path, capsys):
    from hilkit.host.cli import main as cli
    out = tmp_path / "w.npz"
    assert cli(["train", "digits-cnn-wide", "--epochs", "1", "--prune", "random", "--prune-fraction", "0.75",
                "-o", str(out)]) == 0
    m = modelfile.load(out)
    assert [layer["attrs"]["filters"] for layer in m.layers if layer["op"] == "conv2d"] == [8, 16]
    assert m.graph["meta"]["pruning"]["method"] == "random"
    for bad in (["--prune", "l1"], ["--prune-fraction", "0.5"], ["--prune", "l1", "--prune-fraction", "1.0"],
                ["--density", "0"]):
        assert cli(["train", "digits-cnn-wide", "-o", str(tmp_path / "x.npz"), *bad]) == 2
    assert cli(["train", "digits-cnn", "-o", str(tmp_path / "x.npz"), "--prune", "l1", "--prune-fraction", "0.5"]) == 2
    assert not (tmp_path / "x.npz").exists()
    assert "no pruning options" in capsys.readouterr().err
