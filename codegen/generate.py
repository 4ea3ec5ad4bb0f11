"""Model file -> C sources: load, build the IR, run the passes, plan memory, emit."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import emit_c, ir, passes, planner


@dataclass
class Generated:
    out_dir: Path
    files: list[Path]
    graph: ir.Graph
    plan: planner.Plan
    macs: int
    params: int
    seconds: float
    extra_names: list[str]


def generate(model_path: str | Path, board: str, out_dir: str | Path, exp: str = "libm") -> Generated:
    """Write model.c/model.h for `model_path` into `out_dir`. Needs no compiler."""
    from hilkit.models import modelfile

    t0 = time.perf_counter()
    model = modelfile.load(model_path)
    g = passes.run_default(ir.from_model(model, exp=exp), board=board)
    p = planner.plan(g)
    files, extra_names = emit_c.emit(g, p, Path(out_dir), board, {"exp": exp})
    return Generated(out_dir=Path(out_dir), files=files, graph=g, plan=p,
                     macs=sum(emit_c.macs(n) for n in g.nodes),
                     params=sum(int(a.size) for n in g.nodes for a in n.params.values()),
                     seconds=time.perf_counter() - t0, extra_names=extra_names)
