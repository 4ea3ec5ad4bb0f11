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
