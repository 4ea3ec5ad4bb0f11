"""Graph passes run before memory planning."""
from __future__ import annotations

from .ir import Graph


def fuse_relu(g: Graph) -> Graph:
    """Fold a ReLU into the dense/conv2d that feeds it when the ReLU is that layer's only consumer.

    Saves one pass over the activation and one buffer; the result is the same number."""
    kept = []
    for n in g.nodes:
        if n.op == "relu" and kept:
            src = next((k for k in kept if k.name == n.inputs[0]), None)
            if (src is not None and src.op in ("dense", "conv2d") and not src.fused_relu
                    and len(g.consumers(src.name)) == 1 and src.name != g.output):
                src.fused_relu = True
                # Consumers of the ReLU now read the fused layer under the ReLU's name.
                for m in g.nodes:
                    m.inputs = [src.name if i == n.name else i for i in m.inputs]
                if g.output == n.name:
                    g.output = src.name
                continue
        kept.append(n)
    g.nodes = kept
    return g


def run_default(g: Graph) -> Graph:
    return fuse_relu(g)
