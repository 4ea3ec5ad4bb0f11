"""Training recipes: name -> function that trains a model and writes its model file.

Every recipe has the signature `(out_path, *, seed=0, epochs=None, progress=None) -> summary`,
is deterministic for a given seed, never prints (the CLI shows `progress` as a progress bar) and
writes a model whose graph ends in `softmax`. The test accuracy stored in the file's meta is
measured by running the written graph through the float32 reference, not the training objects.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from . import modelfile, reference
from .data import DIGITS_SHAPE, as_images, digits_split
from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Softmax
from .network import Sequential
from .optim import Adam
from .train import accuracy, cosine_lr, fit


@dataclass(frozen=True)
class DigitsRecipe:
    """A classifier of the fixed digits split, trained with Adam on softmax cross-entropy."""

    name: str
    build: Callable[[np.random.Generator], Sequential]   # rng -> logits network
    input_shape: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0

    def __call__(self, out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
        epochs = self.epochs if epochs is None else int(epochs)
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        t0 = time.perf_counter()
        X_train, y_train, X_test, y_test = digits_split()
        if len(self.input_shape) == 3:
            X_train, X_test = as_images(X_train), as_images(X_test)
        # Independent streams, so changing the epoch count does not change the initial weights.
        init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
        net = self.build(np.random.default_rng(init_seq))
        opt = Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        # The matrices are small: one BLAS thread is as fast as several and leaves the other cores free.
        with threadpool_limits(1, user_api="blas"):
            history = fit(net, X_train, y_train, opt, epochs=epochs, batch_size=self.batch_size,
                          rng=np.random.default_rng(shuffle_seq), lr_schedule=cosine_lr(self.lr, epochs),
                          progress=progress)
        train_seconds = time.perf_counter() - t0

        meta = {"recipe": self.name, "classes": 10, "dataset": "sklearn-digits",
                "split": "train_test_split(test_size=0.2, stratify=y, random_state=0)",
                "seed": int(seed), "epochs": epochs, "batch_size": self.batch_size,
                "optimizer": f"adam(lr={self.lr}, weight_decay={self.weight_decay}, cosine schedule)",
                "train_accuracy": round(accuracy(net, X_train, y_train), 6)}
        graph, arrays = Sequential([net, Softmax()]).to_graph(self.input_shape, name=self.name, meta=meta)
        probs = reference.forward(modelfile.validate(graph, arrays), X_test)
        test_accuracy = float((probs.argmax(axis=1) == y_test).mean())
        graph["meta"]["test_accuracy"] = round(test_accuracy, 6)
        saved = modelfile.save(out_path, graph, arrays)
        return {"recipe": self.name, "path": str(out_path), "hash": saved.hash,
                "test_accuracy": test_accuracy, "train_accuracy": meta["train_accuracy"],
                "test_samples": int(len(y_test)), "train_seconds": round(train_seconds, 3),
                "epochs": epochs, "params": net.n_params(), "seed": int(seed),
                "final_loss": history[-1]["loss"]}


def digits_mlp(rng: np.random.Generator) -> Sequential:
    """64 -> dense 32 -> relu -> dense 10 (logits)."""
    return Sequential([Dense(64, 32, rng), ReLU(), Dense(32, 10, rng)])


def digits_cnn(rng: np.random.Generator) -> Sequential:
    """[1, 8, 8] -> conv3x3 8 -> relu -> pool2 -> conv3x3 16 -> relu -> pool2 -> flatten -> dense 10."""
    return Sequential([
        Conv2D(1, 8, 3, rng, padding="same"), ReLU(), MaxPool2D(2),
        Conv2D(8, 16, 3, rng, padding="same"), ReLU(), MaxPool2D(2),
        Flatten(), Dense(16 * 2 * 2, 10, rng),
    ])


RECIPES: dict[str, Callable[..., dict]] = {
    "digits-mlp": DigitsRecipe("digits-mlp", digits_mlp, (64,), epochs=60, batch_size=32, lr=3e-3,
                               weight_decay=1e-2),
    "digits-cnn": DigitsRecipe("digits-cnn", digits_cnn, DIGITS_SHAPE, epochs=60, batch_size=64, lr=1e-2,
                               weight_decay=1e-2),
}


def _digits_meanet(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """MEANet edge model (main block, exit, extension for the hard classes) plus its cloud model,
    written beside it as <stem>.cloud.npz (docs/meanet.md)."""
    from .meanet import recipe
    return recipe(out_path, seed=seed, epochs=epochs, progress=progress)


RECIPES["digits-meanet"] = _digits_meanet


def _snn_recipe(name: str) -> Callable[..., dict]:
    """A spiking recipe of models/snn_recipes.py (docs/snn.md), imported on first use."""
    def run(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
        from .snn_recipes import RECIPES as SNN_RECIPES
        return SNN_RECIPES[name](out_path, seed=seed, epochs=epochs, progress=progress)
    run.__name__ = run.__qualname__ = "_" + name.replace("-", "_")
    return run


for _name in ("digits-snn", "digits-snn-stdb", "digits-snn-sparse"):
    RECIPES[_name] = _snn_recipe(_name)


# ---------------------------------------------------------------- digits-cnn-wide (pruning, docs/pruning.md)
def digits_cnn_wide(rng: np.random.Generator) -> Sequential:
    """[1, 8, 8] -> conv3x3 32 -> relu -> pool2 -> conv3x3 64 -> relu -> pool2 -> flatten -> dense 10:
    wide enough that most filters can go."""
    return Sequential([
        Conv2D(1, 32, 3, rng, padding="same"), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, 3, rng, padding="same"), ReLU(), MaxPool2D(2),
        Flatten(), Dense(64 * 2 * 2, 10, rng),
    ])


WIDE_EPOCHS, WIDE_BATCH, WIDE_LR, WIDE_WD = 30, 64, 3e-3, 1e-2


def _digits_cnn_wide(out_path, *, seed: int = 0, epochs: int | None = None, progress=None,
                     prune: str | None = None, prune_fraction: float = 0.0,
                     prune_schedule: str = "while-training", prune_every: int = 2, prune_step: float = 0.3,
                     retrain_epochs: int = 15, density: float | None = None) -> dict:
    """digits-cnn-wide, optionally pruned (models/pruning.py).

    prune / prune_fraction: filter pruning by "l1", "mean-act" or "random" of that fraction of each
    conv layer's filters, while training (every `prune_every` epochs, `prune_step` of the remaining
    filters) or, with prune_schedule="then-retrain", after training and followed by `retrain_epochs`.
    density: unstructured magnitude pruning of the conv weights to that nonzero fraction after
    training, gradually over `retrain_epochs` of fine-tuning, with the pruned weights held at zero."""
    from . import pruning

    epochs = WIDE_EPOCHS if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    cfg = pruning.PruneConfig(method=prune, fraction=float(prune_fraction or 0.0), schedule=prune_schedule,
                              every=prune_every, step=prune_step, retrain_epochs=retrain_epochs)
    cfg.validate()
    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = digits_split()
    X_train, X_test = as_images(X_train), as_images(X_test)
    init_seq, shuffle_seq, prune_seq = np.random.SeedSequence(seed).spawn(3)
    net = digits_cnn_wide(np.random.default_rng(init_seq))
    opt = Adam(net.parameters(), lr=WIDE_LR, weight_decay=WIDE_WD)
    shuffle = np.random.default_rng(shuffle_seq)
    with threadpool_limits(1, user_api="blas"):
        res = pruning.fit_pruned(net, X_train, y_train, opt, epochs=epochs, batch_size=WIDE_BATCH, rng=shuffle,
                                 lr_schedule=cosine_lr(WIDE_LR, epochs), input_shape=DIGITS_SHAPE, config=cfg,
                                 prune_rng=np.random.default_rng(prune_seq), progress=progress)
        if density is not None:
            tune = Adam(net.parameters(), lr=WIDE_LR * 0.3, weight_decay=WIDE_WD)
            res.history += pruning.fit_sparse(net, X_train, y_train, tune, float(density), epochs=retrain_epochs,
                                              batch_size=WIDE_BATCH, rng=shuffle,
                                              lr_schedule=cosine_lr(WIDE_LR * 0.3, retrain_epochs))
            res.training_macs += pruning.training_macs_per_sample(net, DIGITS_SHAPE) * len(X_train) * retrain_epochs
    train_seconds = time.perf_counter() - t0

    info = {"method": prune, "fraction": cfg.fraction, "schedule": cfg.schedule if prune else None,
            "filters_original": res.original_filters, "filters": res.final_filters,
            "training_macs": int(res.training_macs), "events": res.events,
            "density": None if density is None else float(density),
            "conv_density": [round(d, 6) for d in pruning.conv_density(net)]}
    meta = {"recipe": "digits-cnn-wide", "classes": 10, "dataset": "sklearn-digits",
            "split": "train_test_split(test_size=0.2, stratify=y, random_state=0)",
            "seed": int(seed), "epochs": epochs, "batch_size": WIDE_BATCH,
            "optimizer": f"adam(lr={WIDE_LR}, weight_decay={WIDE_WD}, cosine schedule)",
            "train_accuracy": round(accuracy(net, X_train, y_train), 6), "pruning": info}
    graph, arrays = Sequential([net, Softmax()]).to_graph(DIGITS_SHAPE, name="digits-cnn-wide", meta=meta)
    probs = reference.forward(modelfile.validate(graph, arrays), X_test)
    test_accuracy = float((probs.argmax(axis=1) == y_test).mean())
    graph["meta"]["test_accuracy"] = round(test_accuracy, 6)
    saved = modelfile.save(out_path, graph, arrays)
    return {"recipe": "digits-cnn-wide", "path": str(out_path), "hash": saved.hash,
            "test_accuracy": test_accuracy, "train_accuracy": meta["train_accuracy"],
            "test_samples": int(len(y_test)), "train_seconds": round(train_seconds, 3), "epochs": epochs,
            "params": net.n_params(), "seed": int(seed), "final_loss": res.history[-1]["loss"],
            "forward_macs": pruning.forward_macs(net, DIGITS_SHAPE), **{f"pruning_{k}": v for k, v in info.items()}}


RECIPES["digits-cnn-wide"] = _digits_cnn_wide


# ---------------------------------------------------------------- exp-heavy models (QuAKE, docs/quake.md)
def digits_gelu_cnn(rng: np.random.Generator) -> Sequential:
    """digits-cnn with GELU (x * sigmoid(1.702 x)) in place of ReLU: every activation is an exp."""
    from .layers import GELU
    return Sequential([
        Conv2D(1, 8, 3, rng, padding="same"), GELU(), MaxPool2D(2),
        Conv2D(8, 16, 3, rng, padding="same"), GELU(), MaxPool2D(2),
        Flatten(), Dense(16 * 2 * 2, 10, rng),
    ])


RECIPES["digits-gelu-cnn"] = DigitsRecipe("digits-gelu-cnn", digits_gelu_cnn, DIGITS_SHAPE, epochs=60,
                                          batch_size=64, lr=1e-2, weight_decay=1e-2)


def _digits_vit(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """A small vision transformer (2x2-patch tokens, softmax attention, GELU MLP; models/transformer.py)."""
    from .transformer import recipe
    return recipe(out_path, seed=seed, epochs=epochs, progress=progress)


RECIPES["digits-vit"] = _digits_vit


def _digits_snn_me(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """The converted digits CNN with magneto-electric LIF neurons: stochastic firing from the
    fitted switching model of the device (models/me_snn.py, docs/me-neuron.md)."""
    from .me_snn import recipe
    return recipe(out_path, seed=seed, epochs=epochs, progress=progress)


RECIPES["digits-snn-me"] = _digits_snn_me


# ---------------------------------------------------------------- unsupervised STDP (docs/stdp.md)
def _digits_stdp(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """Convolutional STDP kernels (JETC 2018 reading), int8 on the board, softmax readout (models/stdp.py)."""
    from .stdp import digits_stdp
    return digits_stdp(out_path, seed=seed, epochs=epochs, progress=progress)


def _digits_restocnet(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """ReStoCNet: binary kernels by HB-STDP, residual layers, bit-packed on the board (models/restocnet.py)."""
    from .restocnet import digits_restocnet
    return digits_restocnet(out_path, seed=seed, epochs=epochs, progress=progress)


RECIPES["digits-stdp"] = _digits_stdp
RECIPES["digits-restocnet"] = _digits_restocnet


# ---------------------------------------------------------------- cartpole-lsm (spiking reservoir RL, docs/reservoir-rl.md)
def _cartpole_lsm(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """A spiking reservoir policy for gymnasium's CartPole-v1: a fixed random 150-neuron LIF
    reservoir and a readout trained by deep Q-learning; the model is one `lsm_policy` node (input
    [observation, reset flag], output one score per action) and its summary reports episode returns
    (mean_return over 100 test episodes) instead of a test accuracy."""
    from .qlearn import recipe
    return recipe(out_path, seed=seed, epochs=epochs, progress=progress)


RECIPES["cartpole-lsm"] = _cartpole_lsm
