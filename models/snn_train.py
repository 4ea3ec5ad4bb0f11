"""Hybrid STDB fine-tuning of a converted SNN (Rathi et al., ICLR 2020), with an optional
spike-count term in the loss (arXiv 2003.01250).

The network is simulated in float with exactly the dynamics of the fixed-point operator (direct
input, IF/LIF, soft/hard reset, threshold/2 start), and trained by backpropagation through time.
A spike is a step function of the membrane; its gradient is replaced by the spike-timing
surrogate

    d s_t / d u_t = alpha * exp(-beta * dt) / theta,   dt = t - (step of the neuron's last spike
                                                        before t)

and 0 for a neuron that has not spiked before t (the authors' code starts the last spike time at
-1000, where the exponential underflows to 0; `before_first_spike="from_start"`, an ablation,
counts dt from step 0 instead, which gives silent neurons the largest slope). The reset is treated
as a constant (detached), as in the authors' code. Feed-forward layers let the time loop run
layer by layer: each layer's linear map sees all T steps as one batch of T*N (so the modules of
layers.py do the forward and backward work), and only the neuron dynamics loop over t.

Loss = cross-entropy(mean output current over T) + lambda(epoch) * (spikes / (N T neurons)),
with lambda raised linearly from 0 to `spike_weight` over the epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .layers import AvgPool2D, Conv2D, Dense, Flatten, SoftmaxCrossEntropy
from .optim import Adam
from .snn_convert import FloatSNN
from .train import cosine_lr


@dataclass(frozen=True)
class STDBConfig:
    timesteps: int = 8
    reset: str = "soft"
    v_init: str = "half"
    leak: float = 1.0            # membrane decay per step (1: IF)
    alpha: float = 0.3           # surrogate height (the authors' value)
    beta: float = 0.01           # surrogate decay per step since the last spike
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    spike_weight: float = 0.0    # final weight of the spike-rate term (0: plain STDB)
    before_first_spike: str = "none"   # surrogate before a neuron's first spike: see BEFORE_FIRST_SPIKE


# "none": no gradient until the neuron has spiked once (the authors' code); "from_start": dt counts
# from step 0 (this kit's earlier convention, kept as an ablation).
BEFORE_FIRST_SPIKE = ("none", "from_start")


def surrogate(dt: np.ndarray, alpha: float, beta: float, theta: float = 1.0) -> np.ndarray:
    """d spike / d membrane = alpha * exp(-beta * dt) / theta."""
    return (alpha * np.exp(-beta * dt) / theta).astype(np.float32)


def neurons_forward(I: np.ndarray, T: int, theta: float, u0: float, leak: float, reset: str,
                    alpha: float, beta: float, constant: bool = False,
                    before_first_spike: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """Spikes S [T, N, ...] and surrogate slopes G [T, N, ...] for input currents I [T, N, ...]
    (constant: I is [N, ...], the same current every step)."""
    if before_first_spike not in BEFORE_FIRST_SPIKE:
        raise ValueError(f"before_first_spike must be one of {', '.join(BEFORE_FIRST_SPIKE)}, not {before_first_spike!r}")
    const = constant
    shape = I.shape if const else I.shape[1:]
    u = np.full(shape, u0, np.float32)
    last = np.zeros(shape, np.float32)
    fired = np.full(shape, before_first_spike == "from_start")
    S = np.empty((T,) + shape, np.float32)
    G = np.empty((T,) + shape, np.float32)
    for t in range(T):
        u = leak * u + (I if const else I[t])
        s = u >= theta
        G[t] = surrogate(t - last, alpha, beta, theta) * fired
        last = np.where(s, np.float32(t), last)
        fired |= s
        u = u - theta * s if reset == "soft" else u * ~s
        S[t] = s
    return S, G


def neurons_backward(dS: np.ndarray, S: np.ndarray, G: np.ndarray, leak: float, reset: str) -> np.ndarray:
    """dL/dI [T, N, ...] from dL/dS: BPTT through u_t = leak * u'_{t-1} + I_t with the reset
    detached (u' = u - theta s: d u'/d u = 1; hard u' = u (1 - s): d u'/d u = 1 - s)."""
    dI = np.empty_like(dS)
    carry = np.zeros(dS.shape[1:], np.float32)
    for t in range(len(dS) - 1, -1, -1):
        keep = leak if reset == "soft" else leak * (1 - S[t])
        du = dS[t] * G[t] + carry * keep
        dI[t] = du
        carry = du
    return dI


class SpikingNet:
    """The float, trainable twin of a FloatSNN (direct coding)."""

    def __init__(self, fsnn: FloatSNN, cfg: STDBConfig):
        self.fsnn, self.cfg = fsnn.copy(), cfg
        self.geo = fsnn.layers()
        self.stages = []  # (pre modules, linear module) per neuron layer
        rng = np.random.default_rng(0)  # shapes only: the weights are overwritten below
        for l in self.geo:
            pre = []
            if l.pool > 1:
                pre.append(AvgPool2D(l.pool))
            if l.kind == "conv":
                lin = Conv2D(l.pooled[0], l.out_dims[0], l.kernel, rng, stride=l.stride, padding=l.padding)
            else:
                if l.in_dims[1:] != (1, 1):
                    pre.append(Flatten())
                lin = Dense(int(np.prod(l.pooled)), l.out_dims[0], rng)
            lin.params["weight"] = fsnn.weights[f"{l.name}.weight"].astype(np.float32).reshape(lin.params["weight"].shape)
            lin.params["bias"] = fsnn.weights[f"{l.name}.bias"].astype(np.float32)
            self.stages.append((pre, lin))
        self.n_neurons = sum(l.n_out for l in self.geo if l.spiking)

    def parameters(self):
        return [p for _, lin in self.stages for p in lin.parameters()]

    @staticmethod
    def _lin_forward(pre, lin, x):
        for m in pre:
            x = m.forward(x)
        return lin.forward(x)

    @staticmethod
    def _lin_backward(pre, lin, dy):
        dx = lin.backward(dy)
        for m in reversed(pre):
            dx = m.backward(dx)
        return dx

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits (mean output current over T) for x [N, *input_shape]."""
        c = self.cfg
        T, n = c.timesteps, len(x)
        x = np.asarray(x, np.float32).reshape((n,) + tuple(self.fsnn.input_shape))
        self.cache = []
        self.spikes = np.zeros(n, np.int64)
        s_prev = None
        for l, (pre, lin) in zip(self.geo, self.stages):
            if s_prev is None:                               # direct coding: one current for all steps
                I = self._lin_forward(pre, lin, x)
            else:
                flat = s_prev.reshape((T * n,) + s_prev.shape[2:])
                I = self._lin_forward(pre, lin, flat)
                I = I.reshape((T, n) + I.shape[1:])
            if not l.spiking:
                return I if s_prev is None else I.mean(axis=0)
            theta = self.fsnn.thresholds[l.name]
            u0 = theta / 2 if c.v_init == "half" else 0.0
            S, G = neurons_forward(I, T, theta, u0, c.leak, c.reset, c.alpha, c.beta, constant=s_prev is None,
                                   before_first_spike=c.before_first_spike)
            self.spikes += S.reshape(T, n, -1).sum(axis=(0, 2)).astype(np.int64)
            self.cache.append((S, G))
            s_prev = S
        raise AssertionError("the last layer must be the output layer")

    def backward(self, dlogits: np.ndarray, spike_weight: float = 0.0) -> None:
        """Gradients of CE (dlogits = dL/dlogits) + spike_weight * spike rate into the layers."""
        c = self.cfg
        T, n = c.timesteps, len(dlogits)
        d_rate = np.float32(spike_weight / (n * T * self.n_neurons))
        dI = np.broadcast_to((dlogits / T)[None], (T,) + dlogits.shape).reshape((T * n,) + dlogits.shape[1:])
        for i in range(len(self.stages) - 1, -1, -1):
            pre, lin = self.stages[i]
            if i == 0:
                self._lin_backward(pre, lin, dI)
                break
            ds = self._lin_backward(pre, lin, np.ascontiguousarray(dI, np.float32))
            S, G = self.cache[i - 1]
            ds = ds.reshape(S.shape) + d_rate
            dI = neurons_backward(ds, S, G, c.leak, c.reset)
            if i - 1 == 0:
                dI = dI.sum(axis=0)                          # the constant direct current
            else:
                dI = dI.reshape((T * n,) + dI.shape[2:])

    def to_fsnn(self) -> FloatSNN:
        f = self.fsnn.copy()
        for l, (_, lin) in zip(self.geo, self.stages):
            f.weights[f"{l.name}.weight"] = lin.params["weight"].astype(np.float64).copy()
            f.weights[f"{l.name}.bias"] = lin.params["bias"].astype(np.float64).copy()
        return f

    def evaluate(self, X, y, batch_size: int = 256) -> tuple[float, float]:
        """(accuracy, spikes per inference) of the float network."""
        correct, spikes = 0, 0
        for i in range(0, len(X), batch_size):
            logits = self.forward(X[i:i + batch_size])
            correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
            spikes += int(self.spikes.sum())
        return correct / len(X), spikes / len(X)


def train(fsnn: FloatSNN, X: np.ndarray, y: np.ndarray, cfg: STDBConfig, rng: np.random.Generator,
          progress: Callable | None = None) -> tuple[FloatSNN, list[dict]]:
    """Fine-tune `fsnn` by STDB (+ spike-count term); returns the trained FloatSNN and the history."""
    net = SpikingNet(fsnn, cfg)
    opt = Adam(net.parameters(), lr=cfg.lr)
    schedule = cosine_lr(cfg.lr, cfg.epochs)
    loss = SoftmaxCrossEntropy()
    history = []
    for epoch in range(cfg.epochs):
        opt.lr = schedule(epoch)
        lam = cfg.spike_weight * (epoch + 1) / cfg.epochs
        order = rng.permutation(len(X))
        tot_loss, correct, spikes = 0.0, 0, 0
        for start in range(0, len(X), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            logits = net.forward(X[idx], train=True)
            tot_loss += loss.forward(logits, y[idx]) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            spikes += int(net.spikes.sum())
            net.backward(loss.backward(), spike_weight=lam)
            opt.step()
        rec = {"epoch": epoch + 1, "loss": tot_loss / len(X), "accuracy": correct / len(X),
               "spikes": spikes / len(X), "spike_weight": lam, "lr": opt.lr}
        history.append(rec)
        if progress is not None:
            progress(epoch + 1, cfg.epochs, rec["loss"], rec["accuracy"])
    return net.to_fsnn(), history
