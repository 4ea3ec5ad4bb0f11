"""A minibatch training loop for classifiers, and its evaluation helpers."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .layers import Module, SoftmaxCrossEntropy

Progress = Callable[[int, int, float, float], None]


def fit(model: Module, X: np.ndarray, y: np.ndarray, optimizer, *, epochs: int, batch_size: int,
        rng: np.random.Generator, loss=None, lr_schedule: Callable[[int], float] | None = None,
        progress: Progress | None = None) -> list[dict]:
    """Train `model` (which outputs logits) with minibatch gradient descent.

    Each epoch visits the samples in an order drawn from `rng`. `lr_schedule(epoch)` (0-based), if
    given, sets `optimizer.lr` at the start of each epoch. `progress(epoch, epochs, loss, acc)` is
    called after each epoch (1-based) with the epoch's mean loss and training accuracy.
    Returns the per-epoch history."""
    loss = loss or SoftmaxCrossEntropy()
    n = len(X)
    history = []
    for epoch in range(epochs):
        if lr_schedule is not None:
            optimizer.lr = lr_schedule(epoch)
        order = rng.permutation(n)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            logits = model.forward(X[idx], train=True)
            total_loss += loss.forward(logits, y[idx]) * len(idx)
            correct += int((logits.argmax(axis=1) == y[idx]).sum())
            model.backward(loss.backward())
            optimizer.step()
        rec = {"epoch": epoch + 1, "loss": total_loss / n, "accuracy": correct / n, "lr": optimizer.lr}
        history.append(rec)
        if progress is not None:
            progress(epoch + 1, epochs, rec["loss"], rec["accuracy"])
    return history


def predict_logits(model: Module, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    return np.concatenate([model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def accuracy(model: Module, X: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a logits (or probabilities) model."""
    return float((predict_logits(model, X).argmax(axis=1) == y).mean())


def cosine_lr(base: float, epochs: int, floor: float = 0.0) -> Callable[[int], float]:
    """lr(e) = floor + (base - floor) (1 + cos(pi e / epochs)) / 2."""
    return lambda e: floor + (base - floor) * 0.5 * (1 + np.cos(np.pi * e / epochs))
