"""The `hilkit` command line. Every command has --help; bad input exits 2 with one clear line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import UsageError, user_errors

DEFAULT_BOARD = "mps2-an386"


def _console(stderr: bool = True):
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    # Tables stay readable when piped to a file or CI log (rich would assume 80 columns).
    return Console(stderr=stderr, width=None if stream.isatty() else 120)


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def _write_json(path: str, obj: dict) -> None:
    """Write JSON atomically: a reader never sees half a file."""
    from hilkit.core.files import write_atomic
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# What each command writes: (argument, "file" | "dir"), and the work folders it builds in when given
# a model file. All are checked before any work starts (exit 2, one line naming the path).
OUTPUTS = {"json": "file", "output": None, "uf2": "file", "workdir": "dir"}
WORK_FOLDERS = {"run": "out/run", "flash": "out/run", "control": "out/control"}


def check_outputs(args) -> None:
    from hilkit.core.files import check_output_dir, check_output_file
    for attr, kind in OUTPUTS.items():
        value = getattr(args, attr, None)
        if not isinstance(value, str):
            continue
        if kind is None:  # -o: a folder for compile, a file everywhere else
            kind = "dir" if args.command == "compile" else "file"
        what = "--" + attr if attr != "output" else "-o"
        (check_output_dir if kind == "dir" else check_output_file)(value, what)
    work = WORK_FOLDERS.get(args.command)
    model = getattr(args, "model", None)
    if work and model and not Path(model).is_dir() and Path(model).suffix.lower() not in (".elf", ".bin", ".uf2"):
        check_output_dir(work, "work folder")


# ---------------------------------------------------------------- boards
def cmd_boards(args) -> int:
    from . import boards
    rows = [b.summary() for b in boards.list_boards()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table
    t = Table(title="hilkit boards")
    for col in ("id", "cpu", "runtime", "flash", "ram", "clock MHz", "QEMU"):
        t.add_column(col)
    for r in rows:
        qemu = f"{r['qemu']} (twin)" if r.get("qemu_twin") else r["qemu"]  # twin: a stand-in image
        t.add_row(r["id"], r["cpu"], r["runtime"], _kib(r["flash_bytes"]), _kib(r["ram_bytes"]),
                  str(r["clock_mhz"]), qemu or "-")
    _console(stderr=False).print(t)
    return 0


def _kib(n) -> str:
    if n is None:
        return "-"
    return f"{n / 1024 / 1024:.0f} MiB" if n >= 1 << 20 else f"{n / 1024:.0f} KiB"


# ---------------------------------------------------------------- train
def cmd_train(args) -> int:
    from hilkit.models import recipes
    if args.recipe not in recipes.RECIPES:
        raise UsageError(f"unknown recipe {args.recipe!r}; choose one of: {', '.join(sorted(recipes.RECIPES))}")
    prune_kw = _prune_kwargs(args)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=_console(),
                  transient=False) as prog:
        task = prog.add_task(f"train {args.recipe}", total=None, info="")

        def progress(epoch, n_epochs, loss, acc, info=None):  # info: a recipe's own line (cartpole-lsm: returns)
            if info is None:  # recipes without a loss (unsupervised STDP) report NaN: leave it out
                info = "  ".join(part for part, v in ((f"loss {loss:.4f}", loss), (f"acc {acc * 100:.1f} %", acc))
                                 if v == v)
            prog.update(task, total=n_epochs, completed=epoch, info=info)

        kw = {"seed": args.seed, "progress": progress}
        if args.epochs is not None:
            kw["epochs"] = args.epochs
        kw.update(prune_kw)
        summary = recipes.RECIPES[args.recipe](args.output, **kw)
    acc = summary.get("test_accuracy")
    if acc is None and "mean_return" in summary:  # a control policy (cartpole-lsm): episode returns
        result = (f"mean return {summary['mean_return']:.1f} (min {summary['min_return']:.0f}) over "
                  f"{summary['test_episodes']} test episodes")
    else:
        result = f"test accuracy {acc * 100:.2f} %"
    _console().print(f"wrote {args.output}: {result}, {summary.get('train_seconds', 0):.1f} s")
    if args.json:
        _write_json(args.json, summary)
    return 0


# ---------------------------------------------------------------- train: pruning options (docs/pruning.md)
PRUNABLE_RECIPES = ("digits-cnn-wide",)


def _add_prune_options(s) -> None:
    s.add_argument("--prune", choices=("l1", "mean-act", "random"),
                   help="prune conv filters while training, ranked by this (digits-cnn-wide)")
    s.add_argument("--prune-fraction", type=float, default=None, metavar="F",
                   help="fraction of each conv layer's filters to prune, 0 <= F < 1 (with --prune)")
    s.add_argument("--prune-schedule", choices=("while-training", "then-retrain"), default=None,
                   help="prune while training (default) or after it, then retrain (the baseline)")
    s.add_argument("--density", type=float, default=None, metavar="D",
                   help="unstructured magnitude pruning of the conv weights to this nonzero fraction, 0 < D <= 1")


def _prune_kwargs(args) -> dict:
    kw = {}
    if args.prune is not None:
        if args.prune_fraction is None:
            raise UsageError("--prune needs --prune-fraction F (e.g. 0.8)")
        if not 0.0 <= args.prune_fraction < 1.0:
            raise UsageError(f"--prune-fraction must be in [0, 1), not {args.prune_fraction}")
        kw.update(prune=args.prune, prune_fraction=args.prune_fraction)
        if args.prune_schedule is not None:
            kw["prune_schedule"] = args.prune_schedule
    elif args.prune_fraction is not None or args.prune_schedule is not None:
        raise UsageError("--prune-fraction and --prune-schedule need --prune l1|mean-act|random")
    if args.density is not None:
        if not 0.0 < args.density <= 1.0:
            raise UsageError(f"--density must be in (0, 1], not {args.density}")
        kw["density"] = args.density
    if kw and args.recipe not in PRUNABLE_RECIPES:
        raise UsageError(f"recipe {args.recipe!r} has no pruning options; use one of: {', '.join(PRUNABLE_RECIPES)}")
    return kw


# ---------------------------------------------------------------- compile
def cmd_compile(args) -> int:
    from . import compile as hk_compile
    res = hk_compile.compile_model(args.model, args.board, args.output, exp=args.exp, build=not args.no_build)
    c = _console(stderr=False)
    bound = res.plan.lower_bound
    over = (res.plan.arena_bytes / bound - 1) * 100 if bound else 0.0
    c.print(f"{res.graph.name} -> {args.output} for {args.board} (exp={args.exp})")
    c.print(f"  layers {len(res.graph.nodes)}, params {res.params}, MACs {res.macs}")
    c.print(f"  arena {res.plan.arena_bytes} bytes, lifetime lower bound {bound} bytes (+{over:.1f} %)")
    if res.image:
        c.print(f"  image {res.image}")
    c.print(f"  generate {res.gen_seconds * 1000:.0f} ms, build {res.build_seconds * 1000:.0f} ms")
    return 0


# ---------------------------------------------------------------- run
def cmd_run(args) -> int:
    from . import run as hk_run
    report = hk_run.run(args.model, args.board, port=args.port, baud=args.baud, limit=args.limit,
                        exp=args.exp, qemu=args.qemu, console=_console(), reference_kind=args.reference,
                        ssh=args.ssh, ssh_config=args.ssh_config, dry_run=args.dry_run)
    if report is None:   # --dry-run: the commands were printed
        return 0
    hk_run.print_report(report, _console(stderr=False))
    if "meanet" in report:
        from . import meanet
        meanet.print_tiers(report, _console(stderr=False))
    if args.json:
        _write_json(args.json, report)
    if report.get("spike_agreement", 1.0) < 1.0:
        print(f"hilkit: spike counts differ from the reference on {1 - report['spike_agreement']:.2%} of the "
              "samples (spiking layers are fixed point: they must be identical)", file=sys.stderr)
        return 1
    if report["top1_agreement"] < args.min_agreement:
        print(f"hilkit: top-1 agreement {report['top1_agreement']:.4f} is below --min-agreement "
              f"{args.min_agreement}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from . import run as hk_run
    report = hk_run.demo(args.board, workdir=args.workdir, console=_console())
    hk_run.print_report(report, _console(stderr=False))
    if args.json:
        _write_json(args.json, report)
    return 0 if report["top1_agreement"] >= 0.997 else 1


# ---------------------------------------------------------------- bench
def cmd_bench(args) -> int:
    from . import bench
    return bench.main(args)


# ---------------------------------------------------------------- flash
def cmd_flash(args) -> int:
    from . import flash as hk_flash
    try:
        plan = hk_flash.flash(args.model, args.board, uf2=args.uf2, drive=args.drive, probe=args.probe,
                              port=args.port, baud=args.baud, base=args.base, ssh=args.ssh,
                              ssh_config=args.ssh_config, dry_run=args.dry_run, exp=args.exp)
    except hk_flash.ModelMismatch as e:  # the board answered with another model: a failed check
        print(f"hilkit: {e}", file=sys.stderr)
        return 1
    for note in plan.notes if args.dry_run else []:
        print(f"# {note}")
    return 0


def _address(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (e.g. 0x10000000)") from None


# ---------------------------------------------------------------- ports
def cmd_ports(args) -> int:
    from . import ports as hk_ports
    rows = hk_ports.list_ports(include_non_usb=args.all)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    if not rows:
        print("no USB serial ports found (plug in the board or its USB-UART adapter; --all lists the others)",
              file=sys.stderr)
        return 0
    from rich.table import Table
    t = Table(title="serial ports")
    for col in ("device", "VID:PID", "serial", "adapter", "board (guess)"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.device, r.vid_pid or "-", r.serial_number or "-", r.adapter or r.description or "-",
                  ", ".join(r.boards) or "-")
    _console(stderr=False).print(t)
    return 0


# ---------------------------------------------------------------- import / export (docs/interchange.md)
def cmd_import(args) -> int:
    src = Path(args.file)
    if not src.is_file():
        raise UsageError(f"{src} not found (a .tflite file or a NIR graph .nir/.h5)")
    if src.suffix.lower() == ".tflite":
        from .tflite import import_file
        m = import_file(src, args.output, name=args.name)
        note = ""
    elif src.suffix.lower() in (".nir", ".h5", ".hdf5"):
        from . import nir_io
        m, note = nir_io.import_file(src, args.output, dt=args.dt, steps=args.steps, name=args.name)
    else:
        raise UsageError(f"{src}: unknown format {src.suffix!r}: import reads .tflite or .nir")
    _console().print(f"wrote {args.output}: {m.name}, {len(m.layers)} layers, input {list(m.input_shape)}, "
                     f"output {list(m.output_shape)}{note}")
    return 0


def cmd_export(args) -> int:
    if args.format == "tflite":
        from .tflite import export_file
        export_file(args.model, args.output)
        note = ""
    else:
        from . import nir_io
        note = nir_io.export_file(args.model, args.output, dt=args.dt or nir_io.DEFAULT_DT)
    _console().print(f"wrote {args.output} ({args.format}){note}")
    return 0


def _add_interchange(sub) -> None:
    s = sub.add_parser("import", help="import a .tflite (float32) or NIR graph as a hilkit model file")
    s.add_argument("file", help="model to import: FILE.tflite or FILE.nir")
    s.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    s.add_argument("--name", help="model name (default: the file's stem, or the name stored by hilkit's export)")
    s.add_argument("--dt", type=float, default=None,
                   help="NIR only: time step in seconds for the discrete neurons (default 1e-3)")
    s.add_argument("--steps", type=positive_int, default=None, help="NIR only: time steps per inference")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("export", help="write a hilkit model file as .tflite or NIR")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--format", required=True, choices=["tflite", "nir"], help="output format")
    s.add_argument("-o", "--output", required=True, help="file to write")
    s.add_argument("--dt", type=float, default=None, help="NIR only: time step in seconds (default 1e-3)")
    s.set_defaults(func=cmd_export)


# ---------------------------------------------------------------- control (docs/reservoir-rl.md)
def cmd_control(args) -> int:
    from . import control as hk_control
    report = hk_control.control(args.model, args.board, episodes=args.episodes, seed=args.seed, port=args.port,
                                baud=args.baud, env_id=args.env, console=_console())
    hk_control.print_report(report, _console(stderr=False))
    if args.json:
        _write_json(args.json, report)
    if report["action_agreement"] < args.min_agreement:
        print(f"hilkit: action agreement {report['action_agreement']:.4f} with the numpy policy is below "
              f"--min-agreement {args.min_agreement}", file=sys.stderr)
        return 1
    return 0


def _add_control(sub) -> None:
    s = sub.add_parser("control", help="closed loop: the environment on the host, a policy model on the board")
    s.add_argument("model", help="policy model file (.npz, from `hilkit train cartpole-lsm`) or a compiled directory")
    s.add_argument("--board", default=DEFAULT_BOARD, help=f"board id (default {DEFAULT_BOARD})")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--port", help="serial port or URL of a real board (/dev/ttyACM0, socket://h:p, rfc2217://)")
    g.add_argument("--qemu", action="store_true", help="run under QEMU (the default for boards that have it)")
    s.add_argument("--baud", type=int, default=None, help="baud rate for --port (default: the board's)")
    s.add_argument("--episodes", type=positive_int, default=20, help="episodes to run (default 20)")
    s.add_argument("--seed", type=int, default=0, help="environment seed of the first episode (default 0)")
    s.add_argument("--env", default="CartPole-v1", help="gymnasium environment id (default CartPole-v1)")
    s.add_argument("--json", metavar="OUT", help="write the report as JSON")
    s.add_argument("--min-agreement", type=float, default=1.0,
                   help="exit 1 if the board's actions agree with the numpy policy's less than this (default 1.0)")
    s.set_defaults(func=cmd_control)


def _add_ssh(group, s, what: str) -> None:
    group.add_argument("--ssh", metavar="USER@HOST[:PORT]", help=f"{what} (IPv6: USER@[ADDR]:PORT; "
                       "BatchMode: set up a key first)")
    s.add_argument("--ssh-config", metavar="FILE", help="ssh config file for --ssh (keys, known hosts), "
                   "passed as -F FILE to ssh and scp")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hilkit", description="Hardware-in-the-loop deployment kit for efficient "
                                "neural networks on ARM boards (QEMU or real hardware).")
    from hilkit.core.version import VERSION
    p.add_argument("--version", action="version", version=f"hilkit {VERSION}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("boards", help="list the supported boards (\"(twin)\": QEMU runs a stand-in image, e.g. "
                       "pico on mps2-an385; `hilkit flash` builds the real board's image)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_boards)

    s = sub.add_parser("train", help="train a reference model recipe and write a model file")
    s.add_argument("recipe", help="recipe name, e.g. digits-cnn, digits-mlp")
    s.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epoch count")
    s.add_argument("--json", metavar="OUT", help="also write the training summary as JSON")
    _add_prune_options(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("compile", help="generate C for a model and build it for a board")
    s.add_argument("model", help="model file (.npz)")
    s.add_argument("--board", default=DEFAULT_BOARD, help=f"board id (default {DEFAULT_BOARD}; see `hilkit boards`)")
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.add_argument("--exp", default="libm", choices=["libm", "quake1", "quake2"],
                   help="exp variant for softmax/GELU/logistic (default libm)")
    s.add_argument("--no-build", action="store_true", help="only generate C (needs no compiler)")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="run a model on a board (QEMU or real) and compare with the reference")
    s.add_argument("model", help="model file (.npz) or a directory made by `hilkit compile`")
    s.add_argument("--board", default=DEFAULT_BOARD, help=f"board id (default {DEFAULT_BOARD})")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--port", help="serial port or URL of a real board (/dev/ttyACM0, socket://h:p, rfc2217://)")
    g.add_argument("--qemu", action="store_true", help="run under QEMU (the default for boards that have it; "
                   "pico/pico2 run as QEMU twins on mps2-an385/an505)")
    _add_ssh(g, s, "Linux boards: copy the program there if missing and run it over `ssh -T`")
    s.add_argument("--dry-run", action="store_true", help="with --ssh: print the ssh/scp commands, run nothing")
    s.add_argument("--baud", type=int, default=None, help="baud rate for --port (default: the board's)")
    s.add_argument("--limit", type=positive_int, default=None, help="only the first N test samples")
    s.add_argument("--exp", default="libm", choices=["libm", "quake1", "quake2"], help="exp variant (default libm)")
    s.add_argument("--json", metavar="OUT", help="write the report as JSON")
    s.add_argument("--reference", choices=["numpy", "litert"], default="numpy",
                   help="also compare with LiteRT's interpreter on the model exported to .tflite (litert)")
    s.add_argument("--min-agreement", type=float, default=0.997,
                   help="exit 1 if top-1 agreement with the reference is below this (default 0.997)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="train digits-cnn, compile it and run it on a board end to end")
    s.add_argument("--board", default=DEFAULT_BOARD, help=f"board id (default {DEFAULT_BOARD})")
    s.add_argument("--workdir", default="out/demo", help="where models and builds go (default out/demo)")
    s.add_argument("--json", metavar="OUT", help="write the report as JSON")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("bench", help="benchmarks (exp kernels, whole models)")
    bsub = s.add_subparsers(dest="bench_command", metavar="WHAT")
    b = bsub.add_parser("boards", help="a model on every QEMU board: agreement, instructions, estimates, sizes")
    b.add_argument("model", help="model file (.npz)")
    b.add_argument("--limit", type=positive_int, default=None, help="only the first N test samples")
    b.add_argument("--json", metavar="OUT", help="write results as JSON")
    b = bsub.add_parser("exp", help="softmax/logistic/GELU over 1024 floats for each exp variant")
    b.add_argument("--board", default="host", help="board id (default host)")
    b.add_argument("--json", metavar="OUT", help="write results as JSON")
    b = bsub.add_parser("model", help="whole-model runs compared across exp variants")
    b.add_argument("model", help="model file (.npz)")
    b.add_argument("--board", default="host", help="board id (default host)")
    b.add_argument("--exp", nargs="+", default=["libm", "quake1", "quake2"], help="variants to compare")
    b.add_argument("--vs", choices=["litert"], help="instead: batch-1 latency of our C vs LiteRT (host board)")
    b.add_argument("--reps", type=positive_int, default=2000, help="timed runs per side with --vs (default 2000)")
    b.add_argument("--limit", type=positive_int, default=None, help="only the first N test samples")
    b.add_argument("--json", metavar="OUT", help="write results as JSON")
    s.set_defaults(func=cmd_bench)
    s = sub.add_parser("flash", help="put a model's firmware on a board (UF2, pyOCD/OpenOCD, SD card, ssh, QEMU)")
    s.add_argument("model", help="model file (.npz), a directory made by `hilkit compile`, or an image (ELF/.bin)")
    s.add_argument("--board", required=True, help="board id (see `hilkit boards`)")
    s.add_argument("--uf2", metavar="OUT", help="write the UF2 file here (pico, pico2: the hardware image, "
                   "not the QEMU twin)")
    s.add_argument("--drive", metavar="PATH", help="mounted drive to copy to: the UF2 boot drive (RPI-RP2, RP2350), "
                   "an SD card's boot partition (rpi3-bm) or an MPS board's configuration drive")
    s.add_argument("--probe", choices=["pyocd", "openocd"], help="program through a debug probe with this tool")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--port", help="serial port of the board (or `auto`): checked before flashing, and the board "
                   "must answer INFO with the model afterwards")
    s.add_argument("--baud", type=int, default=None, help="baud rate for --port (default: the board's)")
    s.add_argument("--base", type=_address, default=None, help="load address of a raw .bin image (e.g. 0x10000000)")
    _add_ssh(g, s, "Linux boards: copy the program there with scp and check that it answers over ssh")
    s.add_argument("--exp", default="libm", choices=["libm", "quake1", "quake2"], help="exp variant when compiling")
    s.add_argument("--dry-run", action="store_true", help="print every command instead of running it")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("ports", help="list serial ports with VID:PID, serial number and a board guess")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--all", action="store_true", help="also list ports without a USB VID:PID")
    s.set_defaults(func=cmd_ports)
    _add_interchange(sub)
    _add_control(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        check_outputs(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hilkit: interrupted", file=sys.stderr)
        return 130
    except user_errors() as e:
        print(f"hilkit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
