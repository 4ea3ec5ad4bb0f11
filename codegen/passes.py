"""Graph passes run before memory planning."""
from __future__ import annotations

from .ir import Graph

# Weight density (nonzero fraction) below which a conv runs faster on the sparse kernel than on the
# dense blocked one, measured by bench/pruning/crossover.py (results/crossover-<board>.md): on
# mps2-an386 (Cortex-M4F, dense kernel on the FPU asm path) the crossover is 32-40 % over the conv
# shapes it tries, on rpi4 (Cortex-A72, dense kernel on NEON, sparse kernel scalar) 17-19 %, and for
# a 1-channel first layer never. Set a little below the lowest measured value of each.
SPARSE_CROSSOVER = 0.30       # Cortex-M (and boards without NEON)
SPARSE_CROSSOVER_NEON = 0.15  # boards whose compiler targets NEON


def sparse_crossover(board=None) -> float:
    """The crossover density for a board (a Board or an id; None: the Cortex-M value)."""
    if board is None:
        return SPARSE_CROSSOVER
    from hilkit.host.boards import get_board
    b = get_board(board)
    neon = b.toolchain.startswith("aarch64") or any("neon" in f for f in b.cflags)
    return SPARSE_CROSSOVER_NEON if neon else SPARSE_CROSSOVER


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


def choose_conv_kernels(g: Graph, crossover: float = SPARSE_CROSSOVER) -> Graph:
    """Run each conv2d on the dense blocked kernel or, when its weights are sparser than `crossover`
    (unstructured pruning), on the sparse kernel: the node becomes the IR-only op `conv2d_sparse`.

    The model file keeps dense weights; this is a per-layer choice of kernel, and the result is the
    same number either way (up to float rounding). Run after fuse_relu: both kernels fuse ReLU."""
    from .ops_sparse import density, sparse_fits

    for n in g.nodes:
        if n.op == "conv2d" and density(n.params["weight"]) < crossover and sparse_fits(n):
            n.op = "conv2d_sparse"
    return g


def run_default(g: Graph, board=None) -> Graph:
    """The default passes. `board` picks the sparse/dense crossover (the constants above are read at
    call time, so a bench can move them: 0 means always dense)."""
    return choose_conv_kernels(fuse_relu(g), sparse_crossover(board))
