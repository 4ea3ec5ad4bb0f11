"""Spiking recipes: digits-snn (converted), digits-snn-stdb (converted, then STDB), digits-snn-sparse
(STDB with the spike-count loss). Registered in `recipes.RECIPES`; same signature and contract
(deterministic for a seed, never prints, the graph ends in softmax, the stored test accuracy is the
reference's on the written file).

Each trains the ANN it converts (the average-pooling variant of digits-cnn; digits-mlp's
architecture for `arch="mlp"`), because max pooling has no rate-coded equivalent.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from . import modelfile, reference, snn_convert, snn_train
from .data import DIGITS_SHAPE, as_images, digits_split
from .layers import AvgPool2D, Conv2D, Dense, Flatten, ReLU
from .network import Sequential
from .optim import Adam
from .train import accuracy, cosine_lr, fit

ANN_EPOCHS = 60
# The STDB surrogate decays by exp(-beta) per step since the neuron's last spike (the authors' code
# uses beta = 0.01 over 100-200 steps). Chosen here by a sweep over 0.01-1 on a validation split
# carved from the training split (bench/snn/snn_bench.py beta 0 1 2; docs/snn.md): STDB takes the
# best mean validation accuracy, the spike-count loss the fewest spikes within 1 pt of it. The
# differences between betas are ~1 pt, the size of the validation noise.
STDB_BETA = 0.1
SPARSE_BETA = 0.3
SPLIT = "train_test_split(test_size=0.2, stratify=y, random_state=0)"


def digits_cnn_avg(rng: np.random.Generator) -> Sequential:
    """digits-cnn with average pooling: conv3x3 8 -> relu -> avgpool2 -> conv3x3 16 -> relu -> avgpool2 -> dense 10."""
    return Sequential([
        Conv2D(1, 8, 3, rng, padding="same"), ReLU(), AvgPool2D(2),
        Conv2D(8, 16, 3, rng, padding="same"), ReLU(), AvgPool2D(2),
        Flatten(), Dense(16 * 2 * 2, 10, rng),
    ])


def digits_mlp(rng: np.random.Generator) -> Sequential:
    """digits-mlp: 64 -> dense 32 -> relu -> dense 10."""
    return Sequential([Dense(64, 32, rng), ReLU(), Dense(32, 10, rng)])


ARCHS = {"cnn": (digits_cnn_avg, DIGITS_SHAPE, 64, 1e-2), "mlp": (digits_mlp, (64,), 32, 3e-3)}


def digits_data(arch: str):
    X_train, y_train, X_test, y_test = digits_split()
    if len(ARCHS[arch][1]) == 3:
        X_train, X_test = as_images(X_train), as_images(X_test)
    return X_train, y_train, X_test, y_test


def train_ann(arch: str, seed: int = 0, epochs: int = ANN_EPOCHS, progress=None, offset: int = 0,
              total: int | None = None, data=None):
    """The ANN a spiking recipe converts (Adam, cosine schedule, weight decay 1e-2; the digits
    recipes' settings). Returns (net, test accuracy). data: (X_train, y_train, X_test, y_test)
    instead of the digits split (bench/snn/snn_bench.py's validation split)."""
    build, _, batch, lr = ARCHS[arch]
    X_train, y_train, X_test, y_test = digits_data(arch) if data is None else data
    init_seq, shuffle_seq = np.random.SeedSequence([seed, 1]).spawn(2)
    net = build(np.random.default_rng(init_seq))
    opt = Adam(net.parameters(), lr=lr, weight_decay=1e-2)
    prog = None if progress is None else (lambda e, n, l, a: progress(offset + e, total or n, l, a))
    with threadpool_limits(1, user_api="blas"):
        fit(net, X_train, y_train, opt, epochs=epochs, batch_size=batch, rng=np.random.default_rng(shuffle_seq),
            lr_schedule=cosine_lr(lr, epochs), progress=prog)
        return net, accuracy(net, X_test, y_test)


@dataclass(frozen=True)
class SNNRecipe:
    """ANN -> threshold-balanced conversion -> (STDB fine-tuning) -> fixed-point spiking_net.

    `epochs` means the ANN's epochs when there is no fine-tuning, else the fine-tuning epochs."""

    name: str
    timesteps: int
    stdb_epochs: int = 0
    spike_weight: float = 0.0
    lr: float = 1e-3
    beta: float = STDB_BETA
    before_first_spike: str = "none"
    reset: str = "soft"
    v_init: str = "half"
    percentile: float = 99.9
    arch: str = "cnn"
    options: dict = field(default_factory=dict)   # more quantize() options (coding, weight_bits, ...)

    def __call__(self, out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
        t0 = time.perf_counter()
        ann_epochs, ft_epochs = ANN_EPOCHS, self.stdb_epochs
        if epochs is not None:
            if int(epochs) < 1:
                raise ValueError(f"epochs must be >= 1, got {epochs}")
            if ft_epochs:
                ft_epochs = int(epochs)
            else:
                ann_epochs = int(epochs)
        total = ann_epochs + ft_epochs
        X_train, y_train, X_test, y_test = digits_data(self.arch)
        input_shape = ARCHS[self.arch][1]
        ann, ann_acc = train_ann(self.arch, seed, ann_epochs, progress, 0, total)
        fsnn = snn_convert.convert(ann, X_train, input_shape, percentile=self.percentile)
        meta = {"recipe": self.name, "classes": 10, "dataset": "sklearn-digits", "split": SPLIT, "seed": int(seed),
                "epochs": ft_epochs or ann_epochs,
                "ann": {"arch": "digits-cnn with average pooling" if self.arch == "cnn" else "digits-mlp",
                        "epochs": ann_epochs, "test_accuracy": round(ann_acc, 6)},
                "conversion": {"balancing": f"percentile {self.percentile}" if self.percentile < 100 else "max",
                               "calibration": "training split",
                               "lambdas": {k: round(v, 6) for k, v in fsnn.lambdas.items()}}}
        if ft_epochs:
            cfg = snn_train.STDBConfig(timesteps=self.timesteps, reset=self.reset, v_init=self.v_init,
                                       epochs=ft_epochs, lr=self.lr, spike_weight=self.spike_weight,
                                       beta=self.beta, before_first_spike=self.before_first_spike)
            rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
            prog = None if progress is None else (lambda e, n, l, a: progress(ann_epochs + e, total, l, a))
            with threadpool_limits(1, user_api="blas"):
                fsnn, hist = snn_train.train(fsnn, X_train, y_train, cfg, rng, progress=prog)
            meta["stdb"] = {"epochs": ft_epochs, "lr": self.lr, "alpha": cfg.alpha, "beta": cfg.beta,
                            "before_first_spike": cfg.before_first_spike,
                            "spike_weight": self.spike_weight, "schedule": "spike weight raised linearly from 0",
                            "train_accuracy": round(hist[-1]["accuracy"], 6)}
        attrs, params = snn_convert.quantize(fsnn, timesteps=self.timesteps, reset=self.reset, v_init=self.v_init,
                                             **self.options)
        train_seconds = time.perf_counter() - t0
        graph, arrays = snn_convert.build_graph(attrs, params, input_shape, name=self.name, meta=meta)
        model = modelfile.validate(graph, arrays)
        probs = reference.forward(model, X_test)
        test_accuracy = float((probs.argmax(axis=1) == y_test).mean())
        from .snn import model_counters
        counts = model_counters(model, X_test)
        spikes = float(sum(v.mean() for k, v in counts.items() if k.split(".")[-1].startswith("spikes_l")))
        synops = float(counts["snn.synops"].mean())
        graph["meta"].update({"test_accuracy": round(test_accuracy, 6), "timesteps": self.timesteps,
                              "spikes_per_inference": round(spikes, 3), "synops_per_inference": round(synops, 3)})
        saved = modelfile.save(out_path, graph, arrays)
        return {"recipe": self.name, "path": str(out_path), "hash": saved.hash, "test_accuracy": test_accuracy,
                "ann_test_accuracy": ann_acc, "test_samples": int(len(y_test)),
                "train_seconds": round(train_seconds, 3), "epochs": ft_epochs or ann_epochs, "seed": int(seed),
                "params": int(sum(a.size for a in arrays.values())), "timesteps": self.timesteps,
                "spikes_per_inference": spikes, "synops_per_inference": synops}


RECIPES = {
    "digits-snn": SNNRecipe("digits-snn", timesteps=32),
    "digits-snn-stdb": SNNRecipe("digits-snn-stdb", timesteps=8, stdb_epochs=20),
    "digits-snn-sparse": SNNRecipe("digits-snn-sparse", timesteps=8, stdb_epochs=20, spike_weight=1.5,
                                   beta=SPARSE_BETA),
}
