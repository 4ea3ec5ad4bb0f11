"""Trainable numpy layers: forward and backward passes, batch-first.

Each layer keeps what its backward pass needs from the last `forward` call, and `backward(dy)`
takes dL/dy, stores the parameter gradients in `self.grads` and returns dL/dx. Parameters live in
`self.params` under the names the model file uses (`weight`, `bias`); the optimizers in
`optim.py` update them in place. Layouts: Dense weight [out, in]; Conv2D weight [F, C, k, k];
images [N, C, H, W]. Containers (`Sequential`, `Residual`) are in `network.py`.
"""
from __future__ import annotations

import numpy as np

from . import functional as F


class Module:
    """Base of layers and containers."""

    op: str | None = None     # the model-file operator a leaf layer exports as

    def __init__(self, *, name: str | None = None):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        return self.forward(x, train)

    def children(self) -> list[Module]:
        return []

    def parameters(self) -> list[tuple[Module, str]]:
        """(layer, parameter name) for every trainable array, in a fixed order."""
        own = [(self, k) for k in self.params]
        return own + [p for c in self.children() for p in c.parameters()]

    def n_params(self) -> int:
        return int(sum(m.params[k].size for m, k in self.parameters()))

    def astype(self, dtype) -> Module:
        """Cast every parameter (float64 for gradient checks; float32 to train and export)."""
        for m, k in self.parameters():
            m.params[k] = m.params[k].astype(dtype)
        return self

    def attrs(self) -> dict:
        """The model-file `attrs` of this layer."""
        return {}

    def export(self, builder, inputs: list[str]) -> str:
        """Append this module's nodes to a `network.GraphBuilder`; return the output node's name."""
        if self.op is None:
            raise NotImplementedError(f"{type(self).__name__} has no model-file operator")
        return builder.add(self.op, inputs, self.attrs(), self.params, name=self.name)

    def to_graph(self, input_shape, *, name: str, meta: dict | None = None) -> tuple[dict, dict]:
        """The model-file graph dict and arrays of this module (see docs/model-format.md)."""
        from .network import GraphBuilder
        b = GraphBuilder(input_shape)
        out = self.export(b, [b.input_name])
        return b.graph(name=name, output=out, meta=meta)


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """N(0, 2 / fan_in): keeps the activation variance constant through ReLU layers."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


# ---------------------------------------------------------------- layers with parameters
class Dense(Module):
    """y = x W^T + b."""

    op = "dense"

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, *, name: str | None = None):
        super().__init__(name=name)
        self.params = {"weight": he_normal(rng, (n_out, n_in), n_in),
                       "bias": np.zeros(n_out, np.float32)}

    def forward(self, x, train=False):
        self.x = x
        return F.dense(x, self.params["weight"], self.params["bias"])

    def backward(self, dy):
        self.grads = {"weight": dy.T @ self.x, "bias": dy.sum(axis=0)}
        return dy @ self.params["weight"]

    def attrs(self):
        return {"units": int(self.params["weight"].shape[0])}


class Conv2D(Module):
    """y = W * x + b as one matmul over im2col patches: Y = cols(x) W^T + b."""

    op = "conv2d"

    def __init__(self, in_channels: int, filters: int, kernel: int, rng: np.random.Generator, *,
                 stride: int = 1, padding: str = "same", name: str | None = None):
        super().__init__(name=name)
        if padding not in F.PADDINGS:
            raise ValueError(f"padding must be one of {F.PADDINGS}, not {padding!r}")
        self.kernel, self.stride, self.padding = kernel, stride, padding
        fan_in = in_channels * kernel * kernel
        self.params = {"weight": he_normal(rng, (filters, in_channels, kernel, kernel), fan_in),
                       "bias": np.zeros(filters, np.float32)}

    def forward(self, x, train=False):
        w, b = self.params["weight"], self.params["bias"]
        self.x_shape = x.shape
        self.pads = F.conv_padding(x.shape[2], x.shape[3], self.kernel, self.stride, self.padding)
        self.cols, self.out_hw = F.im2col(x, self.kernel, self.stride, self.pads)
        y = self.cols @ w.reshape(w.shape[0], -1).T + b                       # [N*H'*W', F]
        return y.reshape(x.shape[0], *self.out_hw, -1).transpose(0, 3, 1, 2)

    def backward(self, dy):
        w = self.params["weight"]
        dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])                # [N*H'*W', F]
        self.grads = {"weight": (dy2.T @ self.cols).reshape(w.shape), "bias": dy2.sum(axis=0)}
        dcols = dy2 @ w.reshape(w.shape[0], -1)
        return F.col2im(dcols, self.x_shape, self.kernel, self.stride, self.pads, self.out_hw)

    def attrs(self):
        return {"filters": int(self.params["weight"].shape[0]), "kernel": self.kernel,
                "stride": self.stride, "padding": self.padding}


# ---------------------------------------------------------------- element-wise activations
class ReLU(Module):
    """y = max(x, 0); dy/dx = [x > 0]."""

    op = "relu"

    def forward(self, x, train=False):
        self.mask = x > 0
        return F.relu(x)

    def backward(self, dy):
        return dy * self.mask


class Sigmoid(Module):
    """y = 1 / (1 + e^-x); dy/dx = y (1 - y)."""

    op = "sigmoid"

    def forward(self, x, train=False):
        self.y = F.sigmoid(x)
        return self.y

    def backward(self, dy):
        return dy * self.y * (1 - self.y)


class GELU(Module):
    """GELU, in the sigmoid form x sigmoid(1.702 x) or the tanh form."""

    op = "gelu"

    def __init__(self, approx: str = "sigmoid", *, name: str | None = None):
        super().__init__(name=name)
        if approx not in F.GELU_APPROX:
            raise ValueError(f"approx must be one of {F.GELU_APPROX}, not {approx!r}")
        self.approx = approx

    def forward(self, x, train=False):
        self.x = x
        return F.gelu(x, self.approx)

    def backward(self, dy):
        x = self.x
        if self.approx == "sigmoid":
            # d/dx x s(kx) = s(kx) + k x s(kx) (1 - s(kx))
            s = F.sigmoid(F.GELU_SIGMOID_K * x)
            return dy * (s + F.GELU_SIGMOID_K * x * s * (1 - s))
        # d/dx 0.5 x (1 + t), t = tanh(u), u = c (x + a x^3)
        t = np.tanh(F.GELU_TANH_C * (x + F.GELU_TANH_A * x ** 3))
        du = F.GELU_TANH_C * (1 + 3 * F.GELU_TANH_A * x ** 2)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

    def attrs(self):
        return {"approx": self.approx}


class Softmax(Module):
    """y = softmax(x) over the last axis; dx = y (dy - sum(dy y)). The model's output layer; train
    with `SoftmaxCrossEntropy` on the logits instead, which is simpler and stabler."""

    op = "softmax"

    def forward(self, x, train=False):
        self.y = F.softmax(x)
        return self.y

    def backward(self, dy):
        return self.y * (dy - (dy * self.y).sum(axis=-1, keepdims=True))


# ---------------------------------------------------------------- shape layers
class MaxPool2D(Module):
    """y = max over each size x size window ('valid'); the gradient goes to the (first) maximum."""

    op = "maxpool2d"

    def __init__(self, size: int = 2, stride: int | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.size, self.stride = size, stride or size

    def forward(self, x, train=False):
        s, st = self.size, self.stride
        self.in_hw = x.shape[2:]
        out = (F.pool_output_size(x.shape[2], s, st), F.pool_output_size(x.shape[3], s, st))
        win = F.windows(x, s, st, out).reshape(*x.shape[:2], *out, s * s)
        self.argmax = win.argmax(axis=-1)
        return np.take_along_axis(win, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, dy):
        s = self.size
        onehot = self.argmax[..., None] == np.arange(s * s)
        dwin = (onehot * dy[..., None]).reshape(*dy.shape, s, s)
        return F.scatter_windows(dwin, self.in_hw, self.stride)

    def attrs(self):
        return {"size": self.size, "stride": self.stride}


class AvgPool2D(Module):
    """y = mean over each size x size window ('valid'); each input gets dy / size^2."""

    op = "avgpool2d"

    def __init__(self, size: int = 2, stride: int | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.size, self.stride = size, stride or size

    def forward(self, x, train=False):
        self.in_hw = x.shape[2:]
        return F.avgpool2d(x, self.size, self.stride)

    def backward(self, dy):
        s = self.size
        dwin = np.broadcast_to((dy / (s * s))[..., None, None], (*dy.shape, s, s))
        return F.scatter_windows(dwin, self.in_hw, self.stride)

    def attrs(self):
        return {"size": self.size, "stride": self.stride}


class Flatten(Module):
    """[N, ...] -> [N, prod(...)], in C order (the C side reads the same buffer)."""

    op = "flatten"

    def forward(self, x, train=False):
        self.x_shape = x.shape
        return F.flatten(x)

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class Add(Module):
    """y = a + b (a residual join); both inputs receive dy. Takes two inputs, so it lives inside a
    container such as `network.Residual` rather than directly in a `Sequential`."""

    op = "add"

    def forward(self, a, b, train=False):
        if a.shape != b.shape:
            raise ValueError(f"add: input shapes differ: {a.shape} and {b.shape}")
        return F.add(a, b)

    def backward(self, dy):
        return dy, dy

    def __call__(self, a, b, train=False):
        return self.forward(a, b, train)


# ---------------------------------------------------------------- loss
class SoftmaxCrossEntropy:
    """L = -mean_n log softmax(z_n)[y_n]; dL/dz = (softmax(z) - onehot(y)) / N."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        logp = F.log_softmax(logits)
        self.p = np.exp(logp)
        self.labels = np.asarray(labels)
        return float(-logp[np.arange(len(logits)), self.labels].mean())

    def backward(self) -> np.ndarray:
        d = self.p.copy()
        d[np.arange(len(d)), self.labels] -= 1
        return d / len(d)

    __call__ = forward
