"""Static memory planner: places every activation buffer in one arena from buffer lifetimes.

Each node's output gets a storage: the caller's `in` or `out` pointer, an alias of its input
(flatten; element-wise ops and add working in place when their input dies there), or a new arena
buffer. A buffer lives from the step that writes it to the last step that reads it (through any
alias). Buffers are placed largest first at the lowest offset that does not overlap a placed buffer
with an overlapping lifetime. The lower bound is the largest total size of buffers live at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ops
from .ir import Graph

ALIGN = 4  # bytes: float alignment is all the kernels (scalar, NEON vld1q, MVE vldrw) need


@dataclass
class Buffer:
    id: int
    size: int  # bytes, aligned
    raw: int  # bytes the tensor needs
    start: int
    end: int
    offset: int = -1
    names: list[str] = field(default_factory=list)


@dataclass
class Plan:
    storage: dict[str, str]  # node name -> "in" | "out" | "buf<N>"
    buffers: list[Buffer]
    arena_bytes: int
    lower_bound: int

    def offset_floats(self, node: str) -> int | None:
        s = self.storage[node]
        if not s.startswith("buf"):
            return None
        return self.buffers[int(s[3:])].offset // 4


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _inplace(op: str) -> bool:
    e = ops.get(op)
    return e is not None and e.inplace


def plan(g: Graph) -> Plan:
    storage: dict[str, str] = {"input": "in"}
    buffers: list[Buffer] = []
    step = {n.name: i for i, n in enumerate(g.nodes)}

    def last_reader(name: str) -> int:
        readers = [step[c.name] for c in g.consumers(name)]
        return max(readers) if readers else step.get(name, 0)

    for i, n in enumerate(g.nodes):
        src = storage[n.inputs[0]]
        # In place only when no name stored in the input's buffer (the input itself, or a view of
        # it such as a flatten) is read after this step.
        src_dies_here = src.startswith("buf") and all(
            last_reader(name) <= i for name in buffers[int(src[3:])].names)
        if n.name == g.output:
            storage[n.name] = "out"  # a flatten output becomes a copy into `out`
        elif n.op == "flatten":
            storage[n.name] = src
        elif _inplace(n.op) and src_dies_here:
            storage[n.name] = src
        else:
            b = Buffer(id=len(buffers), size=_align(n.out_size * 4), raw=n.out_size * 4, start=i, end=i)
            buffers.append(b)
            storage[n.name] = f"buf{b.id}"
        if storage[n.name].startswith("buf"):
            buffers[int(storage[n.name][3:])].names.append(n.name)

    # Extend each buffer's lifetime to the last read of any node stored in it.
    for name, s in storage.items():
        if s.startswith("buf") and name != "input":
            b = buffers[int(s[3:])]
            b.end = max(b.end, last_reader(name))

    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.start)):
        clashes = sorted((p for p in placed if p.start <= b.end and b.start <= p.end), key=lambda p: p.offset)
        off = 0
        for p in clashes:
            if off + b.size <= p.offset:
                break
            off = max(off, p.offset + p.size)
        b.offset = off
        placed.append(b)

    arena = max((b.offset + b.size for b in buffers), default=0)
    steps = range(len(g.nodes))
    lower = max((sum(b.raw for b in buffers if b.start <= t <= b.end) for t in steps), default=0)
    return Plan(storage=storage, buffers=buffers, arena_bytes=arena, lower_bound=lower)
