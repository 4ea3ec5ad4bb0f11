"""Trainable numpy layers of a small vision transformer (ViT), with forward and backward passes.

Tokens are batch-first `[N, T, D]` (T tokens of D features). The layers and the model-file
operators they export as:

| layer | op | computes |
|---|---|---|
| `Patches(h, w)` | `patches` | `[N, C, H, W]` -> `[N, (H/h)(W/w), C h w]`: non-overlapping h x w patches in row-major order, each flattened (c, dy, dx); `Patches(1, W)` gives one token per image row |
| `TokenDense(d_in, d_out)` | `token_dense` | the same dense layer on every token: `y[t] = W x[t] + b` |
| `PosEmbedding(T, D)` | `add_const` | `x + P`, a learned `[T, D]` position table |
| `LayerNorm(D)` | `layernorm` | over the last axis: `(x - mean) / sqrt(var + 1e-5) * weight + bias` |
| `SelfAttention(D, heads)` | `attention` | multi-head self-attention: `qkv = x Wqkv^T + b` (q, k, v each split into `heads` slices of D/heads), `softmax(q k^T / sqrt(D/heads)) v` per head, heads side by side, then `out_weight`, `out_bias` |
| `TokenMean()` | `token_mean` | `[N, T, D]` -> `[N, D]`, the mean over the tokens |

The GELU MLP uses `layers.GELU` (element-wise, any shape) and residual joins `network.Residual`.
The forward math is `functional.py`'s (`patches`, `layernorm`, `attention`, `token_mean`), shared
with the float32 reference; the softmax inside `attention` follows the node's `exp` variant in the
reference and in the C (kernels_c/hk_attention.h), while training uses the exact exp.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import GELU, Dense, Module
from .network import Residual, Sequential


def normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


class Patches(Module):
    """Images [N, C, H, W] -> tokens [N, T, C*height*width] (a reshape: no parameters)."""

    op = "patches"

    def __init__(self, height: int, width: int, *, name: str | None = None):
        super().__init__(name=name)
        self.height, self.width = int(height), int(width)

    def forward(self, x, train=False):
        self.x_shape = x.shape
        return F.patches(x, self.height, self.width)

    def backward(self, dy):
        n, c, h, w = self.x_shape
        gh, gw = h // self.height, w // self.width
        d = dy.reshape(n, gh, gw, c, self.height, self.width).transpose(0, 3, 1, 4, 2, 5)
        return d.reshape(self.x_shape)

    def attrs(self):
        return {"height": self.height, "width": self.width}


class TokenDense(Module):
    """y[n, t] = W x[n, t] + b, W [d_out, d_in], shared by every token."""

    op = "token_dense"

    def __init__(self, d_in: int, d_out: int, rng: np.random.Generator, *, name: str | None = None):
        super().__init__(name=name)
        # Var 1/fan_in (LeCun): these layers feed GELU or a residual sum, not a ReLU.
        self.params = {"weight": normal(rng, (d_out, d_in), np.sqrt(1.0 / d_in)),
                       "bias": np.zeros(d_out, np.float32)}

    def forward(self, x, train=False):
        self.x = x
        return F.dense(x, self.params["weight"], self.params["bias"])

    def backward(self, dy):
        d_in = self.x.shape[-1]
        dy2 = dy.reshape(-1, dy.shape[-1])
        self.grads = {"weight": dy2.T @ self.x.reshape(-1, d_in), "bias": dy2.sum(axis=0)}
        return dy @ self.params["weight"]

    def attrs(self):
        return {"units": int(self.params["weight"].shape[0])}


class PosEmbedding(Module):
    """y = x + P, P [T, D] learned (exported as `add_const` with value P)."""

    op = "add_const"

    def __init__(self, tokens: int, dim: int, rng: np.random.Generator, *, name: str | None = None):
        super().__init__(name=name)
        self.params = {"value": normal(rng, (tokens, dim), 0.02)}

    def forward(self, x, train=False):
        return x + self.params["value"]

    def backward(self, dy):
        self.grads = {"value": dy.sum(axis=0)}
        return dy


class LayerNorm(Module):
    """Normalise each token over its features, then scale and shift: x_hat * weight + bias."""

    op = "layernorm"

    def __init__(self, dim: int, *, name: str | None = None):
        super().__init__(name=name)
        self.params = {"weight": np.ones(dim, np.float32), "bias": np.zeros(dim, np.float32)}

    def forward(self, x, train=False):
        dt = x.dtype.type
        mu = x.mean(axis=-1, keepdims=True, dtype=x.dtype)
        d = x - mu
        var = (d * d).mean(axis=-1, keepdims=True, dtype=x.dtype)
        self.rstd = dt(1) / np.sqrt(var + dt(F.LAYERNORM_EPS))
        self.xhat = d * self.rstd
        return self.xhat * self.params["weight"] + self.params["bias"]

    def backward(self, dy):
        axes = tuple(range(dy.ndim - 1))
        self.grads = {"weight": (dy * self.xhat).sum(axis=axes), "bias": dy.sum(axis=axes)}
        g = dy * self.params["weight"]
        # dx = rstd (g - mean(g) - x_hat mean(g x_hat))
        return self.rstd * (g - g.mean(axis=-1, keepdims=True)
                            - self.xhat * (g * self.xhat).mean(axis=-1, keepdims=True))


class SelfAttention(Module):
    """Multi-head self-attention over [N, T, D] (D divisible by `heads`), one fused operator."""

    op = "attention"

    def __init__(self, dim: int, heads: int, rng: np.random.Generator, *, name: str | None = None):
        super().__init__(name=name)
        if dim % heads:
            raise ValueError(f"attention: dim {dim} is not divisible by {heads} heads")
        self.heads = int(heads)
        std = np.sqrt(1.0 / dim)
        self.params = {"qkv_weight": normal(rng, (3 * dim, dim), std),
                       "qkv_bias": np.zeros(3 * dim, np.float32),
                       "out_weight": normal(rng, (dim, dim), std),
                       "out_bias": np.zeros(dim, np.float32)}

    def _split(self, a):
        n, t, d = a.shape
        return a.reshape(n, t, self.heads, d // self.heads).transpose(0, 2, 1, 3)   # [N, H, T, dh]

    def forward(self, x, train=False):
        p = self.params
        n, t, d = x.shape
        self.x = x
        qkv = F.dense(x, p["qkv_weight"], p["qkv_bias"])
        self.q, self.k, self.v = (self._split(qkv[..., i * d:(i + 1) * d]) for i in range(3))
        self.scale = x.dtype.type(1.0 / np.sqrt(d // self.heads))
        self.p = F.softmax((self.q @ self.k.transpose(0, 1, 3, 2)) * self.scale)          # [N, H, T, T]
        self.o = (self.p @ self.v).transpose(0, 2, 1, 3).reshape(n, t, d)
        return F.dense(self.o, p["out_weight"], p["out_bias"])

    def backward(self, dy):
        p = self.params
        n, t, d = dy.shape
        dy2 = dy.reshape(-1, d)
        grads = {"out_weight": dy2.T @ self.o.reshape(-1, d), "out_bias": dy2.sum(axis=0)}
        do = self._split(dy @ p["out_weight"])
        dp = do @ self.v.transpose(0, 1, 3, 2)
        dv = self.p.transpose(0, 1, 3, 2) @ do
        ds = self.p * (dp - (dp * self.p).sum(axis=-1, keepdims=True)) * self.scale
        dq, dk = ds @ self.k, ds.transpose(0, 1, 3, 2) @ self.q
        merge = lambda a: a.transpose(0, 2, 1, 3).reshape(n, t, d)  # noqa: E731
        dqkv = np.concatenate([merge(dq), merge(dk), merge(dv)], axis=-1)
        dqkv2 = dqkv.reshape(-1, 3 * d)
        grads["qkv_weight"] = dqkv2.T @ self.x.reshape(-1, d)
        grads["qkv_bias"] = dqkv2.sum(axis=0)
        self.grads = grads
        return dqkv @ p["qkv_weight"]

    def attrs(self):
        return {"heads": self.heads}


class TokenMean(Module):
    """[N, T, D] -> [N, D]: the mean over the tokens."""

    op = "token_mean"

    def forward(self, x, train=False):
        self.t = x.shape[1]
        return F.token_mean(x)

    def backward(self, dy):
        return np.repeat(dy[:, None, :] / dy.dtype.type(self.t), self.t, axis=1)


def encoder_block(dim: int, heads: int, hidden: int, rng: np.random.Generator,
                  gelu: str = "sigmoid") -> Sequential:
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x)), MLP = dense-GELU-dense."""
    return Sequential([
        Residual(Sequential([LayerNorm(dim), SelfAttention(dim, heads, rng)])),
        Residual(Sequential([LayerNorm(dim), TokenDense(dim, hidden, rng), GELU(gelu),
                             TokenDense(hidden, dim, rng)])),
    ])


def vit(input_shape: tuple[int, int, int], patch: tuple[int, int], dim: int, heads: int, hidden: int,
        blocks: int, classes: int, rng: np.random.Generator, gelu: str = "sigmoid") -> Sequential:
    """A ViT classifier (logits): patches -> embedding + positions -> blocks -> LN -> token mean -> dense."""
    c, h, w = input_shape
    ph, pw = patch
    if h % ph or w % pw:
        raise ValueError(f"patch {ph}x{pw} does not tile a {h}x{w} image")
    tokens = (h // ph) * (w // pw)
    return Sequential([
        Patches(ph, pw), TokenDense(c * ph * pw, dim, rng), PosEmbedding(tokens, dim, rng),
        *[encoder_block(dim, heads, hidden, rng, gelu) for _ in range(blocks)],
        LayerNorm(dim), TokenMean(), Dense(dim, classes, rng),
    ])


# ---------------------------------------------------------------- the digits-vit recipe
VIT_PATCH, VIT_DIM, VIT_HEADS, VIT_HIDDEN, VIT_BLOCKS = (2, 2), 24, 2, 48, 1
VIT_EPOCHS, VIT_BATCH, VIT_LR, VIT_WD, VIT_SHIFT_P = 60, 32, 5e-3, 5e-2, 0.5


def digits_vit(rng: np.random.Generator) -> Sequential:
    """[1, 8, 8] -> 16 tokens of 2x2 patches -> 24 features -> one block (2 heads, GELU MLP of 48)
    -> LN -> token mean -> dense 10 (logits)."""
    from .data import DIGITS_SHAPE
    return vit(DIGITS_SHAPE, VIT_PATCH, VIT_DIM, VIT_HEADS, VIT_HIDDEN, VIT_BLOCKS, 10, rng)


def shift_images(X: np.ndarray, rng: np.random.Generator, p: float = 0.5, max_shift: int = 1) -> np.ndarray:
    """Each image [C, H, W] moved by a random whole-pixel offset in [-max_shift, max_shift]^2 (zero
    fill) with probability p; the others unchanged. A small transformer overfits the 1437 digits
    without it (about 94-96 % test accuracy instead of about 97 %)."""
    n, _, h, w = X.shape
    m = max_shift
    padded = np.pad(X, ((0, 0), (0, 0), (m, m), (m, m)))
    moved = rng.random(n) < p
    dy = np.where(moved, rng.integers(0, 2 * m + 1, n), m)
    dx = np.where(moved, rng.integers(0, 2 * m + 1, n), m)
    out = np.empty_like(X)
    for a in range(2 * m + 1):
        for b in range(2 * m + 1):
            sel = (dy == a) & (dx == b)
            out[sel] = padded[sel, :, a:a + h, b:b + w]
    return out


def recipe(out_path, *, seed: int = 0, epochs: int | None = None, progress=None) -> dict:
    """Train digits-vit (Adam, cosine schedule, shift augmentation) and write its model file."""
    import time

    from threadpoolctl import threadpool_limits

    from . import modelfile, reference
    from .data import DIGITS_SHAPE, as_images, digits_split
    from .layers import Softmax
    from .optim import Adam
    from .train import accuracy, cosine_lr, fit

    epochs = VIT_EPOCHS if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = digits_split()
    X_train, X_test = as_images(X_train), as_images(X_test)
    init_seq, shuffle_seq, aug_seq = np.random.SeedSequence(seed).spawn(3)
    net = digits_vit(np.random.default_rng(init_seq))
    opt = Adam(net.parameters(), lr=VIT_LR, weight_decay=VIT_WD)
    shuffle, aug = np.random.default_rng(shuffle_seq), np.random.default_rng(aug_seq)
    lr_at = cosine_lr(VIT_LR, epochs)
    history = []
    with threadpool_limits(1, user_api="blas"):
        for e in range(epochs):
            X_epoch = shift_images(X_train, aug, VIT_SHIFT_P)
            rec = fit(net, X_epoch, y_train, opt, epochs=1, batch_size=VIT_BATCH, rng=shuffle,
                      lr_schedule=lambda _, e=e: lr_at(e))[0]
            history.append(rec)
            if progress is not None:
                progress(e + 1, epochs, rec["loss"], rec["accuracy"])
    train_seconds = time.perf_counter() - t0

    meta = {"recipe": "digits-vit", "classes": 10, "dataset": "sklearn-digits",
            "split": "train_test_split(test_size=0.2, stratify=y, random_state=0)",
            "seed": int(seed), "epochs": epochs, "batch_size": VIT_BATCH,
            "optimizer": f"adam(lr={VIT_LR}, weight_decay={VIT_WD}, cosine schedule)",
            "augmentation": f"shift by up to 1 pixel with p={VIT_SHIFT_P}",
            "architecture": {"patch": list(VIT_PATCH), "dim": VIT_DIM, "heads": VIT_HEADS,
                             "hidden": VIT_HIDDEN, "blocks": VIT_BLOCKS},
            "train_accuracy": round(accuracy(net, X_train, y_train), 6)}
    graph, arrays = Sequential([net, Softmax()]).to_graph(DIGITS_SHAPE, name="digits-vit", meta=meta)
    probs = reference.forward(modelfile.validate(graph, arrays), X_test)
    test_accuracy = float((probs.argmax(axis=1) == y_test).mean())
    graph["meta"]["test_accuracy"] = round(test_accuracy, 6)
    saved = modelfile.save(out_path, graph, arrays)
    return {"recipe": "digits-vit", "path": str(out_path), "hash": saved.hash,
            "test_accuracy": test_accuracy, "train_accuracy": meta["train_accuracy"],
            "test_samples": int(len(y_test)), "train_seconds": round(train_seconds, 3),
            "epochs": epochs, "params": net.n_params(), "seed": int(seed), "final_loss": history[-1]["loss"]}
