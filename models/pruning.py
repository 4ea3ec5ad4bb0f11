"""Filter pruning while training (arXiv 2003.02800), the prune-then-retrain baseline, and
unstructured magnitude pruning.

Pruning while training: every `every` epochs (from epoch `start`), each conv layer loses a fraction
`step` of its remaining filters, ranked by L1 norm, mean activation or at random, until it has lost
`fraction` of its original filters; training simply goes on, with no separate retraining phase.
Pruned filters are removed physically (`remove_filters`): the conv loses its output channels and
the next conv (or the dense layer after the flatten) loses the matching inputs, so the rest of the
training and the exported model file are smaller dense layers. `fit_pruned` counts the training
MACs of every epoch on the network as it is then, so the savings of pruning early are measured,
not assumed. Prune-then-retrain trains the full network, prunes once, then retrains.

Unstructured pruning (`magnitude_masks`, `MaskedOptimizer`) zeroes single conv weights of the
smallest magnitude down to a target density and keeps them zero while fine-tuning; the model
file stays dense and the code generator picks the sparse kernel per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import functional as F
from .layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Module
from .network import Sequential
from .train import fit

METHODS = ("l1", "mean-act", "random")
SCHEDULES = ("while-training", "then-retrain")
# Layers that keep the channel count and the position of each channel (a pruned channel can pass
# through them): element-wise activations and pooling.
_CHANNEL_WISE = (MaxPool2D, AvgPool2D)


class PruningError(ValueError):
    """A pruning request that cannot be met (unknown method, fraction out of range, unsupported net)."""


# ---------------------------------------------------------------- shapes and MACs
def layer_shapes(net: Sequential, input_shape) -> list[tuple[int, ...]]:
    """The input shape of every layer of a flat Sequential, and the output shape at the end."""
    shapes = [tuple(input_shape)]
    for layer in net.layers:
        s = shapes[-1]
        if isinstance(layer, Conv2D):
            f = layer.params["weight"].shape[0]
            k, st = layer.kernel, layer.stride
            s = (f, F.conv_output_size(s[1], k, st, layer.padding), F.conv_output_size(s[2], k, st, layer.padding))
        elif isinstance(layer, _CHANNEL_WISE):
            s = (s[0], F.pool_output_size(s[1], layer.size, layer.stride),
                 F.pool_output_size(s[2], layer.size, layer.stride))
        elif isinstance(layer, Flatten):
            s = (int(np.prod(s)),)
        elif isinstance(layer, Dense):
            s = (layer.params["weight"].shape[0],)
        elif isinstance(layer, Sequential) or layer.children():
            raise PruningError(f"pruning needs a flat Sequential; {type(layer).__name__} is a container")
        shapes.append(s)
    return shapes


def forward_macs(net: Sequential, input_shape) -> int:
    """Multiply-accumulates of one forward pass of one sample (conv: F*C*k*k per output pixel)."""
    shapes = layer_shapes(net, input_shape)
    total = 0
    for layer, s_in, s_out in zip(net.layers, shapes, shapes[1:]):
        if isinstance(layer, Conv2D):
            total += int(np.prod(s_out)) * s_in[0] * layer.kernel * layer.kernel
        elif isinstance(layer, Dense):
            total += int(layer.params["weight"].size)
    return total


def training_macs_per_sample(net: Sequential, input_shape) -> int:
    """MACs of one training step per sample: forward, gradient of the input, gradient of the
    weights (each as many MACs as the forward pass, as `Conv2D`/`Dense.backward` compute them)."""
    return 3 * forward_macs(net, input_shape)


def conv_indices(net: Sequential) -> list[int]:
    return [i for i, layer in enumerate(net.layers) if isinstance(layer, Conv2D)]


def filter_counts(net: Sequential) -> list[int]:
    return [net.layers[i].params["weight"].shape[0] for i in conv_indices(net)]


# ---------------------------------------------------------------- ranking
def activation_means(net: Sequential, X: np.ndarray) -> dict[int, np.ndarray]:
    """Per conv layer (by index): the mean over X and positions of each filter's activation, taken
    after the layer's ReLU when one follows it (what the next layer sees)."""
    out: dict[int, np.ndarray] = {}
    convs = set(conv_indices(net))
    x = X
    for i, layer in enumerate(net.layers):
        x = layer.forward(x)
        if i in convs:
            nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
            a = nxt.forward(x) if nxt is not None and nxt.op == "relu" else np.abs(x)
            out[i] = a.mean(axis=(0, 2, 3))
    return out


def filter_scores(net: Sequential, index: int, method: str, *, rng: np.random.Generator,
                  act_means: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Importance of each filter of conv layer `index` (the lowest are pruned first)."""
    w = net.layers[index].params["weight"]
    if method == "l1":
        return np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
    if method == "mean-act":
        if act_means is None or index not in act_means:
            raise PruningError("mean-act ranking needs activation_means() of the layer")
        return act_means[index]
    if method == "random":
        return rng.random(w.shape[0])
    raise PruningError(f"unknown pruning method {method!r}: choose one of {', '.join(METHODS)}")


# ---------------------------------------------------------------- structured removal
def _slice_param(layer: Module, key: str, index: np.ndarray, axis: int, optimizer) -> None:
    """Keep `index` along `axis` of a parameter, and of the optimizer's state for it."""
    layer.params[key] = np.ascontiguousarray(np.take(layer.params[key], index, axis=axis))
    layer.grads.pop(key, None)
    if optimizer is None:
        return
    for pos, (m, k) in enumerate(optimizer.params):
        if m is layer and k == key:
            for state in ("m", "v"):
                arrays = getattr(optimizer, state, None)
                if arrays is not None:
                    arrays[pos] = np.ascontiguousarray(np.take(arrays[pos], index, axis=axis))


def remove_filters(net: Sequential, index: int, keep, input_shape, optimizer=None) -> None:
    """Physically remove the filters of conv layer `index` not in `keep`, and the matching input
    channels of the layer that reads them (the next conv, or the dense layer after a flatten).
    The network then computes exactly what the masked network computed."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    conv = net.layers[index]
    if not isinstance(conv, Conv2D):
        raise PruningError(f"layer {index} is {type(conv).__name__}, not a Conv2D")
    if keep.size == 0:
        raise PruningError("a conv layer must keep at least one filter")
    shapes = layer_shapes(net, input_shape)
    _slice_param(conv, "weight", keep, 0, optimizer)
    _slice_param(conv, "bias", keep, 0, optimizer)
    for j in range(index + 1, len(net.layers)):
        layer = net.layers[j]
        if isinstance(layer, Conv2D):
            _slice_param(layer, "weight", keep, 1, optimizer)
            return
        if isinstance(layer, Flatten):
            dense = next((m for m in net.layers[j + 1:] if isinstance(m, Dense)), None)
            between = net.layers[j + 1:net.layers.index(dense)] if dense is not None else []
            if dense is None or any(m.params for m in between):
                raise PruningError("a pruned conv must feed a conv, or a flatten and then a dense layer")
            c, h, w = shapes[j]
            cols = (keep[:, None] * (h * w) + np.arange(h * w)[None, :]).ravel()
            _slice_param(dense, "weight", cols, 1, optimizer)
            return
        if layer.params or layer.children():
            raise PruningError(f"cannot prune through {type(layer).__name__} after conv layer {index}")
    # The last conv of the network: its filters are the output channels; nothing else to slice.


def kept_filters(original: int, fraction: float) -> int:
    """Filters a layer keeps when `fraction` of its `original` filters are pruned (at least 1)."""
    return max(1, int(round(original * (1.0 - fraction))))


def prune_filters(net: Sequential, targets: list[int], step: float | None, method: str, *,
                  input_shape, rng: np.random.Generator, X_probe: np.ndarray | None = None,
                  optimizer=None) -> list[tuple[int, int]]:
    """One pruning step: each conv layer loses ceil(step * its current filters) of them (all the
    way to its target when step is None), never going below `targets`. Returns (before, after)
    per conv layer."""
    idx = conv_indices(net)
    means = activation_means(net, X_probe) if method == "mean-act" else None
    if method == "mean-act" and X_probe is None:
        raise PruningError("mean-act ranking needs probe samples (X_probe)")
    changes = []
    for i, target in zip(idx, targets):
        n = net.layers[i].params["weight"].shape[0]
        drop = n - target if step is None else min(n - target, math.ceil(step * n))
        if drop > 0:
            scores = filter_scores(net, i, method, rng=rng, act_means=means)
            keep = np.argsort(-scores, kind="stable")[:n - drop]
            remove_filters(net, i, keep, input_shape, optimizer)
        changes.append((n, n - max(drop, 0)))
    return changes


# ---------------------------------------------------------------- training with pruning
@dataclass
class PruneConfig:
    """What to prune and when. fraction: of each conv layer's original filters, removed by the end."""

    method: str | None = None          # None: no filter pruning
    fraction: float = 0.0
    schedule: str = "while-training"   # or "then-retrain" (the baseline)
    every: int = 2                     # while-training: prune every `every` epochs ...
    start: int = 2                     # ... from the end of epoch `start` on
    step: float = 0.3                  # ... removing this fraction of each layer's remaining filters
    retrain_epochs: int = 15           # then-retrain: epochs of retraining after the one-shot prune
    retrain_lr_scale: float = 0.5      # then-retrain: its cosine schedule starts at lr * this
    probe_samples: int = 256           # mean-act: training samples the activations are averaged over

    def validate(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise PruningError(f"unknown pruning method {self.method!r}: choose one of {', '.join(METHODS)}")
        if not 0.0 <= self.fraction < 1.0:
            raise PruningError(f"prune fraction must be in [0, 1), not {self.fraction}")
        if self.schedule not in SCHEDULES:
            raise PruningError(f"unknown schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if self.every < 1 or self.start < 0 or not 0.0 < self.step <= 1.0:
            raise PruningError("need every >= 1, start >= 0 and 0 < step <= 1")


@dataclass
class PruneResult:
    history: list[dict] = field(default_factory=list)   # per epoch: loss, accuracy, lr, filters, macs
    events: list[dict] = field(default_factory=list)    # per pruning step: epoch, filters before/after
    training_macs: int = 0                              # total over all epochs (and probes)
    original_filters: list[int] = field(default_factory=list)
    final_filters: list[int] = field(default_factory=list)


def fit_pruned(net: Sequential, X: np.ndarray, y: np.ndarray, optimizer, *, epochs: int, batch_size: int,
               rng: np.random.Generator, lr_schedule: Callable[[int], float], input_shape,
               config: PruneConfig, prune_rng: np.random.Generator | None = None,
               progress=None) -> PruneResult:
    """Train with filter pruning as `config` says; returns the history and the training MACs.

    while-training: `epochs` epochs in all, pruning as it goes. then-retrain: `epochs` epochs of the
    full network, one prune to the target, then `config.retrain_epochs` more."""
    config.validate()
    prune_rng = prune_rng if prune_rng is not None else np.random.default_rng(0)
    res = PruneResult(original_filters=filter_counts(net))
    targets = [kept_filters(n, config.fraction) for n in res.original_filters]
    pruning = config.method is not None and config.fraction > 0
    retrain = config.retrain_epochs if pruning and config.schedule == "then-retrain" else 0
    total = epochs + retrain

    def probe():
        if config.method != "mean-act":
            return None
        idx = prune_rng.choice(len(X), size=min(config.probe_samples, len(X)), replace=False)
        res.training_macs += forward_macs(net, input_shape) * len(idx)
        return X[idx]

    def prune(epoch: int, step):
        before = filter_counts(net)
        prune_filters(net, targets, step, config.method, input_shape=input_shape, rng=prune_rng,
                      X_probe=probe(), optimizer=optimizer)
        res.events.append({"epoch": epoch, "before": before, "after": filter_counts(net)})

    retrain_lr = lambda e: lr_schedule(0) * config.retrain_lr_scale * 0.5 * (1 + math.cos(math.pi * e / max(1, retrain)))
    for epoch in range(total):
        in_retrain = epoch >= epochs
        sched = (lambda _e, e=epoch - epochs: retrain_lr(e)) if in_retrain else (lambda _e, e=epoch: lr_schedule(e))
        per_sample = training_macs_per_sample(net, input_shape)
        rec = fit(net, X, y, optimizer, epochs=1, batch_size=batch_size, rng=rng, lr_schedule=sched)[0]
        res.training_macs += per_sample * len(X)
        rec.update(epoch=epoch + 1, filters=filter_counts(net), macs=per_sample * len(X))
        res.history.append(rec)
        done = epoch + 1
        if pruning and config.schedule == "while-training" and done >= config.start and \
                (done - config.start) % config.every == 0 and filter_counts(net) != targets:
            prune(done, config.step)
        elif pruning and config.schedule == "then-retrain" and done == epochs:
            prune(done, None)
        if progress is not None:
            progress(done, total, rec["loss"], rec["accuracy"])
    if pruning and filter_counts(net) != targets:  # a schedule too short for its target: finish it
        prune(total, None)
    res.final_filters = filter_counts(net)
    return res


# ---------------------------------------------------------------- unstructured pruning
def magnitude_masks(net: Sequential, density: float) -> dict[int, np.ndarray]:
    """Per conv layer (by index): a mask keeping the `density` fraction of its weights of largest
    magnitude (at least one weight)."""
    if not 0.0 < density <= 1.0:
        raise PruningError(f"density must be in (0, 1], not {density}")
    masks = {}
    for i in conv_indices(net):
        w = net.layers[i].params["weight"]
        keep = max(1, int(round(density * w.size)))
        order = np.argsort(-np.abs(w).ravel(), kind="stable")
        m = np.zeros(w.size, dtype=bool)
        m[order[:keep]] = True
        masks[i] = m.reshape(w.shape)
    return masks


def apply_masks(net: Sequential, masks: dict[int, np.ndarray]) -> None:
    for i, m in masks.items():
        net.layers[i].params["weight"] *= m


class MaskedOptimizer:
    """Wraps an optimizer: after every step, the masked-out weights are put back to zero."""

    def __init__(self, optimizer, net: Sequential, masks: dict[int, np.ndarray]):
        self.optimizer, self.net, self.masks = optimizer, net, masks

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, v):
        self.optimizer.lr = v

    def step(self) -> None:
        self.optimizer.step()
        apply_masks(self.net, self.masks)


def fit_sparse(net: Sequential, X: np.ndarray, y: np.ndarray, optimizer, density: float, *, epochs: int,
               batch_size: int, rng: np.random.Generator, lr_schedule: Callable[[int], float]) -> list[dict]:
    """Gradual magnitude pruning of the conv weights (Zhu & Gupta's cubic schedule) while fine-tuning:
    the density falls from 1 to `density` over the first two thirds of `epochs`, re-ranked by
    magnitude each epoch; pruned weights are held at zero (MaskedOptimizer). Returns the history."""
    ramp = max(1, (2 * epochs) // 3)
    masks = magnitude_masks(net, 1.0)
    masked = MaskedOptimizer(optimizer, net, masks)
    history = []
    for e in range(epochs):
        if e < ramp:
            d = density + (1.0 - density) * (1.0 - (e + 1) / ramp) ** 3
            masks.clear()
            masks.update(magnitude_masks(net, d))
            apply_masks(net, masks)
        rec = fit(net, X, y, masked, epochs=1, batch_size=batch_size, rng=rng,
                  lr_schedule=lambda _e, e=e: lr_schedule(e))[0]
        rec.update(epoch=e + 1, density=conv_density(net))
        history.append(rec)
    return history


def conv_density(net: Sequential) -> list[float]:
    return [float(np.count_nonzero(net.layers[i].params["weight"])) / net.layers[i].params["weight"].size
            for i in conv_indices(net)]
