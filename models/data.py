"""Datasets. `digits_split()` is the one fixed split every digits recipe and test uses."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

DIGITS_SHAPE = (1, 8, 8)


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)          # pixels are 0..16
    y = d.target.astype(np.int64)
    parts = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    for a in parts:
        a.setflags(write=False)
    return tuple(parts)


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, stratified 80/20 with seed 0: (X_train, y_train, X_test, y_test).

    X is float32 [N, 64] in [0, 1]; y is int64 in 0..9. 1437 training and 360 test samples.
    Returns fresh copies (the split is computed once per process)."""
    X_train, X_test, y_train, y_test = _digits()
    return X_train.copy(), y_train.copy(), X_test.copy(), y_test.copy()


def as_images(X: np.ndarray) -> np.ndarray:
    """[N, 64] digits -> [N, 1, 8, 8] channels-first images."""
    return np.asarray(X).reshape((-1,) + DIGITS_SHAPE)
