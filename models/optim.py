"""Optimizers: SGD with momentum, and Adam.

Both take `module.parameters()` (a list of (layer, name) pairs), read `layer.grads[name]` after a
backward pass, and update `layer.params[name]` in place. `lr` is a plain attribute, so a schedule
is just `opt.lr = ...` between steps.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = float(lr)
        self.t = 0

    def _pairs(self):
        for layer, key in self.params:
            yield layer.params[key], layer.grads[key]

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """v <- mu v + g;  p <- p - lr v   (plain SGD when momentum = 0)."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = float(momentum)
        self.v = [np.zeros_like(layer.params[key]) for layer, key in self.params]

    def step(self):
        self.t += 1
        for (p, g), v in zip(self._pairs(), self.v):
            v *= self.momentum
            v += g
            p -= self.lr * v


class Adam(Optimizer):
    """Kingma & Ba (2015):
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    p <- p - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
    `weight_decay` > 0 adds decoupled decay p <- p - lr wd p (AdamW, Loshchilov & Hutter 2019)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.m = [np.zeros_like(layer.params[key]) for layer, key in self.params]
        self.v = [np.zeros_like(layer.params[key]) for layer, key in self.params]

    def step(self):
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        c2 = 1 - self.b2 ** self.t
        for (p, g), m, v in zip(self._pairs(), self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            if self.weight_decay:
                p -= self.lr * self.weight_decay * p
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
