"""`hilkit compile`: generate C for a model file and build it for a board into one directory.

The directory is self-contained: model.c/model.h, a copy of the model file (model.npz), the
build tree, the firmware image and a manifest (hilkit.json) that `hilkit run DIR` reads."""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hilkit.codegen import generate as gen

from .errors import UsageError

MANIFEST = "hilkit.json"


@dataclass
class Compiled:
    out_dir: Path
    graph: object
    plan: object
    macs: int
    params: int
    image: Path | None
    gen_seconds: float
    build_seconds: float
    manifest: dict


def compile_model(model: str | Path, board_id: str, out_dir: str | Path, *, exp: str = "libm",
                  build: bool = True) -> Compiled:
    """Generate and build into `out_dir`. The folder is made under a temporary name and renamed
    when complete: a failed or interrupted compile leaves no folder that looks finished."""
    from hilkit.core.files import atomic_dir, check_output_dir

    from . import boards

    board = boards.get_board(board_id)  # fails early with the list of valid ids
    model = Path(model)
    if not model.is_file():
        raise UsageError(f"model file {model} not found (make one with `hilkit train digits-cnn -o {model}`)")
    if build:
        from hilkit.codegen.build import check_toolchain
        check_toolchain(board)  # before any work: a missing compiler is one line, nothing written
    out = check_output_dir(out_dir)
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UsageError(f"output folder {out} exists and was not made by `hilkit compile`: "
                         "choose another -o or remove it")
    with atomic_dir(out) as tmp:
        g = gen.generate(model, board.id, tmp, exp=exp)
        shutil.copyfile(model, tmp / "model.npz")
        from . import meanet
        meanet.attach_cloud(model, tmp)  # MEANet: the host-side cloud model travels with the build
        image, t_build = None, 0.0
        if build:
            from hilkit.codegen.build import build_firmware
            t0 = time.perf_counter()
            image = Path(build_firmware(tmp, board)).relative_to(tmp)
            t_build = time.perf_counter() - t0
        manifest = {
            "model": g.graph.name, "model_hash": g.graph.model_hash, "board": board.id, "exp": exp,
            "arena_bytes": g.plan.arena_bytes, "arena_lower_bound": g.plan.lower_bound,
            "macs": g.macs, "params": g.params, "extra": g.extra_names, "image": str(image) if image else None,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Compiled(out_dir=out, graph=g.graph, plan=g.plan, macs=g.macs, params=g.params,
                    image=out / image if image else None, gen_seconds=g.seconds, build_seconds=t_build,
                    manifest=manifest)


def load_manifest(out_dir: str | Path) -> dict:
    p = Path(out_dir) / MANIFEST
    if not p.is_file():
        raise UsageError(f"{out_dir} is not a directory made by `hilkit compile` (no {MANIFEST})")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{p} is not valid JSON: {e}") from None
