"""Containers of layers, and their export to the model-file graph.

`Sequential` chains modules; `Residual` wraps a block as y = x + block(x). Both are modules
themselves, so they nest (a residual inside a sequential inside ...). Every module exports through
a `GraphBuilder`, which names nodes (`conv1`, `relu1`, ...) and collects the parameter arrays;
`module.to_graph(input_shape, name=...)` returns the (graph, arrays) pair `modelfile.save` writes.
New containers (early-exit branches, attention blocks) only need `forward`, `backward`,
`children` and `export`.
"""
from __future__ import annotations

import numpy as np

from .layers import Add, Module

FORMAT = "hilkit-model"
VERSION = 1
_BASE_NAMES = {"conv2d": "conv", "dense": "dense", "maxpool2d": "maxpool", "avgpool2d": "avgpool"}


class Sequential(Module):
    """y = f_n(... f_2(f_1(x))); the backward pass runs the chain rule in reverse."""

    def __init__(self, layers, *, name: str | None = None):
        super().__init__(name=name)
        self.layers = list(layers)

    def forward(self, x, train=False):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def children(self):
        return list(self.layers)

    def export(self, builder, inputs):
        for layer in self.layers:
            inputs = [layer.export(builder, inputs)]
        return inputs[0]

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]


class Residual(Module):
    """y = x + block(x); dL/dx = dy + block.backward(dy). Exports as the block's nodes plus `add`."""

    def __init__(self, block: Module, *, name: str | None = None):
        super().__init__(name=name)
        self.block = block
        self.join = Add(name=name)

    def forward(self, x, train=False):
        return self.join.forward(x, self.block.forward(x, train))

    def backward(self, dy):
        d_skip, d_block = self.join.backward(dy)
        return d_skip + self.block.backward(d_block)

    def children(self):
        return [self.block]

    def export(self, builder, inputs):
        out = self.block.export(builder, inputs)
        return self.join.export(builder, [inputs[0], out])


class GraphBuilder:
    """Collects model-file nodes in topological order, with unique names and float32 arrays."""

    def __init__(self, input_shape, input_name: str = "input"):
        self.input_name = input_name
        self.input_shape = [int(d) for d in input_shape]
        self.layers: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self._names = {input_name}
        self._counts: dict[str, int] = {}

    def _fresh(self, op: str) -> str:
        base = _BASE_NAMES.get(op, op)
        while True:
            self._counts[base] = self._counts.get(base, 0) + 1
            name = f"{base}{self._counts[base]}"
            if name not in self._names:
                return name

    def add(self, op: str, inputs: list[str], attrs: dict | None = None,
            params: dict[str, np.ndarray] | None = None, name: str | None = None) -> str:
        """Append a node; `params` maps role -> array (stored as `<name>.<role>`). Returns its name."""
        name = name or self._fresh(op)
        if name in self._names:
            raise ValueError(f"duplicate layer name {name!r}")
        unknown = [i for i in inputs if i not in self._names]
        if unknown:
            raise ValueError(f"layer {name!r}: inputs {unknown} are not defined yet")
        self._names.add(name)
        node = {"name": name, "op": op, "inputs": list(inputs), "attrs": dict(attrs or {})}
        if params:
            node["params"] = {}
            for role, value in params.items():
                key = f"{name}.{role}"
                node["params"][role] = key
                self.arrays[key] = np.array(value, dtype=np.float32)
        self.layers.append(node)
        return name

    def graph(self, *, name: str, output: str | None = None, meta: dict | None = None) -> tuple[dict, dict]:
        g = {"format": FORMAT, "version": VERSION, "name": name,
             "input": {"name": self.input_name, "shape": list(self.input_shape)},
             "layers": self.layers,
             "output": output or (self.layers[-1]["name"] if self.layers else self.input_name),
             "meta": dict(meta or {})}
        return g, dict(self.arrays)
