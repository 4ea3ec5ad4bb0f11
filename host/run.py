"""`hilkit run` and `hilkit demo`: send the test split through a board and compare with the reference."""
from __future__ import annotations

import hashlib
import shlex
import time
from pathlib import Path

import numpy as np

from . import report as rep
from .compile import MANIFEST, compile_model, load_manifest
from .errors import UsageError

CACHE = Path("out/run")


def prepare(model: str | Path, board_id: str, exp: str = "libm", workdir: Path = CACHE) -> tuple[Path, dict]:
    """Return (compiled dir, manifest) for a model file or a compiled directory."""
    p = Path(model)
    if p.is_dir():
        man = load_manifest(p)
        if man["board"] != board_id:
            raise UsageError(f"{p} was compiled for board {man['board']!r}, not {board_id!r}: "
                             f"run it with --board {man['board']} or compile it again")
        if not man.get("image"):
            raise UsageError(f"{p} was compiled with --no-build: compile it again without it")
        return p, man
    if not p.is_file():
        raise UsageError(f"model {p} not found (a model file .npz or a directory made by `hilkit compile`)")
    from hilkit.codegen.build import source_identity
    # Keyed by everything that determines the build; a folder that exists is complete (compile
    # renames it into place when done), so it is used as it is.
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    out = Path(workdir) / f"{p.stem}-{digest}-{board_id}-{exp}-{source_identity()}"
    if (out / MANIFEST).is_file():
        return out, load_manifest(out)
    res = compile_model(p, board_id, out, exp=exp)
    return out, res.manifest


def run(model, board_id: str, *, port=None, baud=None, limit=None, exp="libm", qemu=False, console=None,
        workdir: Path = CACHE, reference_kind: str = "numpy", ssh=None, ssh_config=None,
        dry_run: bool = False) -> dict | None:
    """The report of the test split on the board; with dry_run (needs ssh) the ssh/scp commands
    are printed instead and None is returned."""
    from hilkit.models import data, modelfile, reference

    from . import boards, ports, protocol, runner
    from . import ssh as hk_ssh

    board = boards.get_board(board_id)
    dest = hk_ssh.destination(ssh, ssh_config, board)   # a Linux board reached over ssh (host/ssh.py)
    if dry_run and dest is None:
        raise UsageError("--dry-run prints the ssh and scp commands: it needs --ssh USER@HOST")
    port = ports.resolve_port(port, board.id)  # `--port auto`: the only matching serial port
    if port is None and dest is None and not board.can_emulate and board.runtime != "host":
        raise UsageError(f"board {board.id} has no QEMU twin: give --port DEV of the real board")
    out_dir, man = prepare(model, board.id, exp, workdir)
    if dry_run:
        for argv in hk_ssh.plan(dest, board.id, out_dir / man["image"]):
            print(shlex.join(argv))
        return None
    from . import meanet
    if meanet.is_meanet(man):  # edge-cloud early exits: the board answers, or offloads to the host
        if dest is not None:
            raise UsageError("MEANet models do not run over --ssh yet: use --port or QEMU")
        return meanet.run(model, board, out_dir, man, port=port, baud=baud, limit=limit, console=console)
    loaded = modelfile.load(out_dir / "model.npz")
    _, _, x_test, y_test = data.digits_split()
    x = x_test.reshape((-1,) + tuple(loaded.shapes["input"])).astype(np.float32)
    if limit is not None:
        if limit < 1:
            raise UsageError("--limit must be at least 1")
        x, y_test = x[:limit], y_test[:limit]
    ref = np.asarray(reference.forward(loaded, x, exp=man.get("exp", "libm")), dtype=np.float32)

    image = out_dir / man["image"]
    outs, cycles, insns, extras = [], [], [], []
    t0 = time.monotonic()
    with runner.start(board, image, port=port, baud=baud, ssh=dest) as target:
        client = protocol.Client(target.link, timeout=target.request_timeout)
        info = client.info()
        if info.get("model_hash") and info["model_hash"] != man["model_hash"]:
            where = f"{dest} runs" if dest else "the board runs"
            todo = (f"remove ~/{target.link.name} there so that it is copied again" if dest
                    else "flash it first")
            raise UsageError(f"{where} model {info['model_hash']}, not {man['model_hash']}: {todo}")
        with rep.progress(console, f"{man['model']} on {board.id}", len(x)) as advance:
            for i in range(len(x)):
                r = client.infer(x[i].ravel())
                outs.append(r.outputs)
                extras.append(r.extra)
                cycles.append(r.cycles)
                counts = target.instruction_counts()
                if counts:
                    insns.append(counts[-1])
                advance()
    wall_s = time.monotonic() - t0
    report = rep.make_report(man, board, np.stack(outs), ref, y_test, cycles=cycles, insns=insns,
                             image=image, runtime_kind=target.kind)
    report["wall_s"] = wall_s   # the target's start (copy, connection) to its last answer
    from .snn_report import snn_metrics  # spiking layers: spikes, synaptic ops, spike agreement
    report.update(snn_metrics(man, loaded, x, extras, instructions=insns if len(insns) == len(x) else None))
    from hilkit.models.stdp import metrics as binary_snn_metrics  # bit-packed binary-kernel SNNs
    report.update(binary_snn_metrics(man, loaded, x, extras, instructions=insns if len(insns) == len(x) else None))
    from .me_report import me_metrics  # ME-LIF neurons: spike agreement, energy ME vs CMOS LIF
    report.update(me_metrics(man, loaded, x, extras, instructions=insns if len(insns) == len(x) else None))
    if reference_kind == "litert":  # LiteRT's interpreter on the same inputs, as a second reference
        from . import litert
        report.update(litert.compare(np.stack(outs), litert.reference_outputs(out_dir / "model.npz", x)))
    return report


def demo(board_id: str, workdir="out/demo", console=None) -> dict:
    from hilkit.models import recipes

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "digits-cnn.npz"
    if not model.is_file():
        if console:
            console.print("[bold]1/3[/] training digits-cnn (numpy reference)")
        recipes.RECIPES["digits-cnn"](model)
    if console:
        console.print(f"[bold]2/3[/] generating C and building firmware for {board_id}")
    prepare(model, board_id, "libm", work)
    if console:
        console.print(f"[bold]3/3[/] running the test split on {board_id} and comparing with the reference")
    return run(model, board_id, console=console, workdir=work)  # reuses the build


print_report = rep.print_report
