"""The forward math of every model-file operator, as plain numpy functions.

Shared by the trainable layers (`layers.py`) and the float32 reference (`reference.py`), so a
model computes the same numbers while training and when it is checked against the board.
Every function keeps its input's dtype: float32 in, float32 out; float64 in (gradient checks),
float64 out. Images are channels-first, batch-first: [N, C, H, W].
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PADDINGS = ("same", "valid")
GELU_APPROX = ("sigmoid", "tanh")
GELU_SIGMOID_K = 1.702                 # x * sigmoid(1.702 x)
GELU_TANH_C = math.sqrt(2.0 / math.pi)  # 0.5 x (1 + tanh(c (x + 0.044715 x^3)))
GELU_TANH_A = 0.044715


# ---------------------------------------------------------------- geometry
def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution along one axis ('same': ceil(size / stride))."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of 'same' along one axis, the TensorFlow/LiteRT convention:
    total = max((out - 1) * stride + kernel - size, 0), before = total // 2, the odd one after."""
    out = conv_output_size(size, kernel, stride, "same")
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_padding(h: int, w: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding of a convolution."""
    if padding == "valid":
        return 0, 0, 0, 0
    return same_padding(h, kernel, stride) + same_padding(w, kernel, stride)


def pool_output_size(size: int, window: int, stride: int) -> int:
    """Output length of a 'valid' pooling window along one axis."""
    return (size - window) // stride + 1


def windows(x: np.ndarray, k: int, stride: int, out_hw: tuple[int, int]) -> np.ndarray:
    """A strided view [N, C, H', W', k, k] of every k x k window of x [N, C, H, W] (no copy)."""
    ho, wo = out_hw
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :ho, :wo]


def scatter_windows(dwin: np.ndarray, in_hw: tuple[int, int], stride: int) -> np.ndarray:
    """The adjoint of `windows`: sum window gradients [N, C, H', W', k, k] back into [N, C, H, W].

    Loops over the k*k kernel offsets only; each step adds a whole strided plane."""
    n, c, ho, wo, k, _ = dwin.shape
    dx = np.zeros((n, c) + tuple(in_hw), dtype=dwin.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dwin[:, :, :, :, i, j]
    return dx


def im2col(x: np.ndarray, kernel: int, stride: int, pads: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Patches of x [N, C, H, W] as rows: [N*H'*W', C*k*k] (column order c, ky, kx, matching a
    [F, C, k, k] weight), and (H', W')."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(pads) else x
    ho = (xp.shape[2] - kernel) // stride + 1
    wo = (xp.shape[3] - kernel) // stride + 1
    win = windows(xp, kernel, stride, (ho, wo))                    # [N, C, H', W', k, k]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[0] * ho * wo, -1)
    return cols, (ho, wo)


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: int, stride: int,
           pads: tuple[int, int, int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The adjoint of `im2col`: patch gradients [N*H'*W', C*k*k] summed back into [N, C, H, W]."""
    n, c, h, w = x_shape
    top, bottom, left, right = pads
    ho, wo = out_hw
    dwin = dcols.reshape(n, ho, wo, c, kernel, kernel).transpose(0, 3, 1, 2, 4, 5)
    dxp = scatter_windows(dwin, (h + top + bottom, w + left + right), stride)
    return dxp[:, :, top:top + h, left:left + w]


# ---------------------------------------------------------------- operators
def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y = x W^T + b, with W [out, in]."""
    return x @ weight.T + bias


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1,
           padding: str = "same") -> np.ndarray:
    """y[n, f] = b[f] + sum_{c, ky, kx} W[f, c, ky, kx] x[n, c, y*s + ky - pt, x*s + kx - pl]."""
    f, _, k, _ = weight.shape
    pads = conv_padding(x.shape[2], x.shape[3], k, stride, padding)
    cols, (ho, wo) = im2col(x, k, stride, pads)
    y = cols @ weight.reshape(f, -1).T + bias                       # [N*H'*W', F]
    return y.reshape(x.shape[0], ho, wo, f).transpose(0, 3, 1, 2)


def maxpool2d(x: np.ndarray, size: int, stride: int | None = None) -> np.ndarray:
    """Max over each size x size window ('valid')."""
    stride = stride or size
    out = (pool_output_size(x.shape[2], size, stride), pool_output_size(x.shape[3], size, stride))
    return windows(x, size, stride, out).max(axis=(4, 5))


def avgpool2d(x: np.ndarray, size: int, stride: int | None = None) -> np.ndarray:
    """Mean over each size x size window ('valid')."""
    stride = stride or size
    out = (pool_output_size(x.shape[2], size, stride), pool_output_size(x.shape[3], size, stride))
    return windows(x, size, stride, out).mean(axis=(4, 5), dtype=x.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), computed from e^-|x| so it never overflows."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


def gelu(x: np.ndarray, approx: str = "sigmoid") -> np.ndarray:
    """GELU: 'sigmoid' = x * sigmoid(1.702 x); 'tanh' = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    dt = x.dtype.type
    if approx == "sigmoid":
        return x * sigmoid(dt(GELU_SIGMOID_K) * x)
    if approx == "tanh":
        return dt(0.5) * x * (1 + np.tanh(dt(GELU_TANH_C) * (x + dt(GELU_TANH_A) * x * x * x)))
    raise ValueError(f"unknown GELU approximation {approx!r}: use one of {GELU_APPROX}")


def softmax(x: np.ndarray) -> np.ndarray:
    """e^(x - max x) / sum e^(x - max x), over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log softmax(x) over the last axis, without forming softmax first."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


# ---------------------------------------------------------------- interchange ops (.tflite import)
def dwconv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: str = "same",
             multiplier: int = 1) -> np.ndarray:
    """Depthwise convolution: y[n, c*m + j] = b + sum_{ky, kx} W[c*m + j, ky, kx] x[n, c, ...], W [C*m, k, k]."""
    n, c, h, w = x.shape
    k = weight.shape[-1]
    top, bottom, left, right = conv_padding(h, w, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if (top or bottom or left or right) else x
    ho = (xp.shape[2] - k) // stride + 1
    wo = (xp.shape[3] - k) // stride + 1
    win = windows(xp, k, stride, (ho, wo))                         # [N, C, H', W', k, k]
    wt = weight.reshape(c, multiplier, k, k)
    y = np.einsum("nchwij,cmij->ncmhw", win, wt, optimize=True).reshape(n, c * multiplier, ho, wo)
    return y + bias.reshape(1, -1, 1, 1).astype(x.dtype, copy=False)


def pad2d(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Zero padding of the H and W axes of [N, C, H, W]."""
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def mean_hw(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Mean over H and W of [N, C, H, W]: [N, C] (or [N, C, 1, 1] with keepdims)."""
    return x.mean(axis=(2, 3), keepdims=bool(keepdims), dtype=x.dtype)


def concat(xs: list[np.ndarray]) -> np.ndarray:
    """Join along the first axis after the batch (channels of [N, C, H, W], or the features of [N, F])."""
    return np.concatenate(xs, axis=1)


def relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0), 6).astype(x.dtype, copy=False)


def relu1(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, -1), 1).astype(x.dtype, copy=False)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """The exact GELU: 0.5 x (1 + erf(x / sqrt 2))."""
    from scipy.special import erf
    dt = x.dtype.type
    return (dt(0.5) * x * (1 + erf(x * dt(1 / math.sqrt(2.0))).astype(x.dtype, copy=False))).astype(x.dtype, copy=False)


def flatten_hwc(x: np.ndarray) -> np.ndarray:
    """[N, C, H, W] -> [N, H*W*C] in channels-last order (what TFLite's RESHAPE of an NHWC tensor gives)."""
    return x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1)


# ---------------------------------------------------------------- transformer ops (models/transformer.py, docs/quake.md)
LAYERNORM_EPS = 1e-5


def patches(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, C, H, W] -> tokens [N, (H/height)(W/width), C*height*width]: non-overlapping patches in
    row-major order, each flattened in (c, dy, dx) order. height=1, width=W: one token per row."""
    n, c, h, w = x.shape
    gh, gw = h // height, w // width
    t = x.reshape(n, c, gh, height, gw, width).transpose(0, 2, 4, 1, 3, 5)
    return t.reshape(n, gh * gw, c * height * width)


def layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = LAYERNORM_EPS) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (var: the biased variance)."""
    dt = x.dtype.type
    mu = x.mean(axis=-1, keepdims=True, dtype=x.dtype)
    d = x - mu
    var = (d * d).mean(axis=-1, keepdims=True, dtype=x.dtype)
    return d * (dt(1) / np.sqrt(var + dt(eps))) * weight + bias


def attention(x: np.ndarray, qkv_weight: np.ndarray, qkv_bias: np.ndarray, out_weight: np.ndarray,
              out_bias: np.ndarray, heads: int, softmax_fn=softmax) -> np.ndarray:
    """Multi-head self-attention of tokens x [N, T, D]: qkv = x Wqkv^T + b ([N, T, 3D]: q, k, v, each
    `heads` slices of D/heads), per head softmax_fn(q k^T / sqrt(D/heads)) v, heads concatenated,
    then out_weight, out_bias. `softmax_fn` (over the last axis) lets the reference use an exp variant."""
    n, t, d = x.shape
    dh = d // heads
    qkv = x @ qkv_weight.T + qkv_bias
    q, k, v = (qkv[..., i * d:(i + 1) * d].reshape(n, t, heads, dh).transpose(0, 2, 1, 3) for i in range(3))
    s = (q @ k.transpose(0, 1, 3, 2)) * x.dtype.type(1.0 / math.sqrt(dh))
    o = (softmax_fn(s) @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    return o @ out_weight.T + out_bias


def token_mean(x: np.ndarray) -> np.ndarray:
    """[N, T, D] -> [N, D]: the mean over the tokens."""
    return x.mean(axis=1, dtype=x.dtype)
