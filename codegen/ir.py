"""The code generator's IR: a list of nodes in execution order, built from a loaded model file."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EXP_VARIANTS = ("libm", "quake1", "quake2")


class CodegenError(ValueError):
    """The model cannot be turned into C (unsupported op or option)."""


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    fused_relu: bool = False

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class Graph:
    name: str
    model_hash: str
    input_shape: tuple[int, ...]
    nodes: list[Node]
    output: str

    @property
    def in_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.node(self.output).out_shape

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]


def from_model(model, exp: str = "libm") -> Graph:
    """Build the IR from a `hilkit.models.modelfile` LoadedModel; `exp` is the default exp variant."""
    from . import ops

    if exp not in EXP_VARIANTS:
        raise CodegenError(f"unknown --exp {exp!r}: choose one of {', '.join(EXP_VARIANTS)}")
    g = model.graph
    nodes = []
    prev = "input"
    for layer in g["layers"]:
        op = layer["op"]
        if op not in ops.supported():
            raise CodegenError(f"layer {layer['name']!r}: op {op!r} has no C kernel in this version")
        inputs = list(layer.get("inputs") or [prev])
        attrs = dict(layer.get("attrs") or {})
        attrs.setdefault("exp", exp)  # the per-layer value in the model file wins over --exp
        if attrs["exp"] not in EXP_VARIANTS:
            raise CodegenError(f"layer {layer['name']!r}: unknown exp variant {attrs['exp']!r}")
        params = {k: np.asarray(model.arrays[v]) for k, v in (layer.get("params") or {}).items()}
        nodes.append(Node(name=layer["name"], op=op, inputs=inputs,
                          in_shapes=[tuple(model.shapes[i]) for i in inputs],
                          out_shape=tuple(model.shapes[layer["name"]]), attrs=attrs, params=params))
        prev = layer["name"]
    output = g.get("output") or prev
    return Graph(name=g.get("name", "model"), model_hash=model.hash,
                 input_shape=tuple(model.shapes["input"]), nodes=nodes, output=output)
