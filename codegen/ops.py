"""The operator registry of the C emitter.

Each op the code generator supports registers one `OpEmitter`: the kernel header it needs, the C
call it emits, the arrays it stores (default: its params as float32), an optional note for the
layer's comment, and its multiply-accumulate count. Areas of the kit add ops from their own
modules (`codegen/ops_*.py`), so the emitter itself never grows a chain of op special cases.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class OpEmitter:
    op: str
    headers: tuple[str, ...]
    call: Callable  # (emitter, node) -> C statement(s), without indentation
    arrays: Callable | None = None  # (node) -> list[(suffix, ndarray)]; default: node.params
    note: Callable | None = None  # (node) -> str for the layer comment
    macs: Callable | None = None  # (node) -> int
    inplace: bool = False  # the kernel allows y == x (element-wise)


REGISTRY: dict[str, OpEmitter] = {}

# Modules that register ops: every `codegen/ops_*.py`, found on first use, so an area of the kit
# adds its operators by adding one file.
_loaded = False


def register(op: str, headers=(), *, arrays=None, note=None, macs=None, inplace=False):
    """Decorator: register `fn(emitter, node) -> str` as the emitter of `op`."""
    def deco(fn):
        REGISTRY[op] = OpEmitter(op, tuple(headers), fn, arrays, note, macs, inplace)
        return fn
    return deco


def get(op: str) -> OpEmitter | None:
    load_all()
    return REGISTRY.get(op)


def supported() -> set[str]:
    load_all()
    return set(REGISTRY)


def load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for m in op_modules():
            importlib.import_module(m)


def op_modules() -> list[str]:
    import pkgutil

    from hilkit import codegen
    names = {m.name for m in pkgutil.iter_modules(codegen.__path__) if m.name.startswith("ops_")}
    return [f"hilkit.codegen.{n}" for n in sorted(names)]


def node_arrays(node) -> list[tuple[str, np.ndarray]]:
    e = get(node.op)
    if e is not None and e.arrays is not None:
        return list(e.arrays(node))
    return [(k, np.asarray(v, dtype=np.float32)) for k, v in node.params.items()]


def node_macs(node) -> int:
    e = get(node.op)
    return int(e.macs(node)) if e is not None and e.macs is not None else 0
