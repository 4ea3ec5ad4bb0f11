"""`hilkit flash`: put a compiled model's firmware on a board.

How depends on the board (its `flash.method` in board.toml) and the options:

- `--probe pyocd|openocd` (bare-metal Cortex-M boards with a probe recipe): the probe tool
  programs the ELF image and resets the board.
- `uf2` (pico, pico2): a UF2 file (host/uf2.py) written beside the image or to `--uf2 OUT`, and
  copied to the board's boot drive (`--drive PATH`, or the only mounted drive whose
  INFO_UF2.TXT names the chip). The image is the board's hardware image (board.toml [hardware]:
  boot2 / IMAGE_DEF, real clocks and UART), built into build/<id>-hw, never the QEMU twin.
- `qemu` (MPS2/MPS3): QEMU loads the image itself; flashing starts it once and checks that it
  answers. A real FPGA board loads images from its configuration drive (`--drive PATH`).
- `copy` (Raspberry Pi Linux): `--ssh USER@HOST[:PORT]` copies the program with scp and starts it
  once over `ssh -T` (its stdio is the link) to check it answers (host/ssh.py: the commands,
  BatchMode, `--ssh-config`); without it the steps are printed. The `host` board takes `--ssh` too
  (a Linux machine of the build machine's kind).
- `sdcard` (rpi3-bm): the raw image copied to the SD card's boot partition (`--drive PATH`).

Every external command is an argument list (never a shell string) run with a time limit, and
`--dry-run` prints each exact command without running anything. With `--port DEV` the port is
checked before anything is written (missing or busy: error), and afterwards the board must answer
INFO with the compiled model's hash.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HilkitError

PROBE_TIMEOUT_S = 120.0
COPY_TIMEOUT_S = 60.0
VERIFY_TIMEOUT_S = 15.0
UF2_NAME = "hilkit.uf2"
RPI_KERNEL_NAME = "hilkit8.img"      # not kernel8.img: that is Raspberry Pi OS's own kernel
MPS_IMAGE_NAME = "HKFW.BIN"          # 8.3 name: the MPS configuration drive is FAT

# Probe recipes: board id -> pyOCD target type / OpenOCD target config. pyOCD's builtin `rp2040`
# target carries its flash algorithm; OpenOCD's rp2040.cfg/rp2350.cfg are the Raspberry Pi
# documentation's command line (rp2350.cfg needs OpenOCD 0.12+dev with RP2350 support).
PYOCD_TARGETS = {"pico": "rp2040"}
OPENOCD_TARGETS = {"pico": "target/rp2040.cfg", "pico2": "target/rp2350.cfg"}
OPENOCD_INTERFACE = "interface/cmsis-dap.cfg"
OPENOCD_SPEED_KHZ = 5000
INSTALL_HINT = {"pyocd": "pip install pyocd", "openocd": "apt-get install openocd (RP2350 needs Raspberry Pi's "
                "OpenOCD build)", "scp": "apt-get install openssh-client",
                "ssh": "apt-get install openssh-client"}


class FlashError(HilkitError):
    """Flashing could not be done: no probe tool, no drive, a busy port, a wrong image."""


@dataclass
class Plan:
    """What `flash` did or (with --dry-run) would do: commands as argument lists, and notes."""
    board: str
    image: Path
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uf2: Path | None = None
    copied_to: Path | None = None
    verified: dict | None = None


# ------------------------------------------------------------------ images
def resolve_image(source, board, *, exp: str = "libm", workdir=None) -> tuple[Path, dict | None]:
    """(firmware image, manifest) for a model file (compiled first), a directory made by
    `hilkit compile`, or an image file (ELF or raw .bin; no manifest). A board whose QEMU machine is
    only a twin (board.toml [hardware]: pico, pico2) gets its hardware image, built from the
    generated C into build/<id>-hw beside the twin's build."""
    from .errors import UsageError

    p = Path(source)
    if p.is_dir() or p.suffix == ".npz":
        from .run import CACHE, prepare
        out_dir, man = prepare(p, board.id, exp, Path(workdir) if workdir else CACHE)
        if board.hardware is not None and (Path(out_dir) / "model.h").is_file():
            from hilkit.codegen.build import build_firmware
            return Path(build_firmware(out_dir, board.hardware)), man
        image = Path(out_dir) / man["image"]
        if not image.is_file():
            raise FlashError(f"{image} is missing: compile {source} again")
        return image, man
    if not p.is_file():
        raise UsageError(f"{p} not found (a model file .npz, a directory made by `hilkit compile`, "
                         "or a firmware image)")
    return p, None


def _bin_image(image: Path) -> Path:
    """The raw binary beside an ELF image (hk_firmware -> hk_firmware.bin, made by the build)."""
    if image.read_bytes()[:4] != b"\x7fELF":
        return image
    b = image.with_name(image.name + ".bin")
    if not b.is_file():
        raise FlashError(f"{b} is missing: the board's build makes it (board.toml build.image = \"bin\")")
    return b


# ------------------------------------------------------------------ probe commands
def _tcl_word(path: Path) -> str:
    """A path as one word of an OpenOCD (Tcl) command: braces quote everything but braces."""
    s = str(path)
    if any(c in s for c in "{}\\\n\r"):
        raise FlashError(f"OpenOCD cannot be given the path {s!r} (braces, backslashes or newlines): "
                         "move the image to a plainer path")
    return "{" + s + "}"


def pyocd_command(board, image: Path, base: int | None = None) -> list[str]:
    target = PYOCD_TARGETS.get(board.id)
    if target is None:
        raise FlashError(f"no pyOCD recipe for board {board.id} (pyOCD: {', '.join(PYOCD_TARGETS)}; "
                         f"OpenOCD: {', '.join(OPENOCD_TARGETS)}); see docs/real-boards.md")
    cmd = ["pyocd", "load", "--target", target]
    if image.read_bytes()[:4] == b"\x7fELF":
        cmd += ["--format", "elf"]
    else:
        if base is None:
            raise FlashError(f"{image} is a raw binary: give its load address with --base")
        cmd += ["--format", "bin", "--base-address", f"0x{base:08x}"]
    return cmd + [str(image.resolve())]


def openocd_command(board, image: Path, base: int | None = None) -> list[str]:
    cfg = OPENOCD_TARGETS.get(board.id)
    if cfg is None:
        raise FlashError(f"no OpenOCD recipe for board {board.id} (OpenOCD: {', '.join(OPENOCD_TARGETS)}); "
                         "see docs/real-boards.md")
    prog = f"program {_tcl_word(image.resolve())}"
    if image.read_bytes()[:4] != b"\x7fELF":
        if base is None:
            raise FlashError(f"{image} is a raw binary: give its load address with --base")
        prog += f" 0x{base:08x}"
    return ["openocd", "-f", OPENOCD_INTERFACE, "-f", cfg, "-c", f"adapter speed {OPENOCD_SPEED_KHZ}",
            "-c", prog + " verify reset exit"]


def find_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FlashError(f"{tool} not found: install it ({INSTALL_HINT.get(tool, tool)}) or use --dry-run to "
                         "see the command")
    return path


def run_tool(argv: list[str], timeout: float) -> str:
    """Run an external command (an argument list) with a time limit; its output, or FlashError."""
    tool = argv[0]
    path = find_tool(tool)
    try:
        p = subprocess.run([path, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{tool} did not finish within {timeout:g} s and was stopped "
                         "(is the probe connected and the board powered?)") from None
    except OSError as e:
        raise FlashError(f"cannot run {tool}: {e}") from None
    if p.returncode != 0:
        tail = " | ".join(p.stdout.strip().splitlines()[-3:]) or "no output"
        raise FlashError(f"{tool} failed (exit {p.returncode}): {tail}")
    return p.stdout


# ------------------------------------------------------------------ drives
def mount_points() -> list[Path]:
    """Mounted file systems where a boot drive may appear: /proc/mounts (Linux), then the usual
    automount folders (/media/USER/*, /run/media/USER/*, /Volumes/* on macOS)."""
    seen: list[Path] = []
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2] in ("vfat", "msdos", "fat", "exfat", "fuseblk"):
                seen.append(Path(parts[1].replace("\\040", " ")))
    except OSError:
        pass
    for pattern in ("/media/*/*", "/run/media/*/*", "/media/*", "/Volumes/*"):
        import glob
        seen += [Path(p) for p in glob.glob(pattern)]
    out, have = [], set()
    for p in seen:
        if p not in have:
            have.add(p)
            out.append(p)
    return out


def read_uf2_info(drive: Path) -> dict | None:
    """INFO_UF2.TXT of a UF2 boot drive as a dict ({"Board-ID": "RPI-RP2", ...}), None if absent."""
    f = Path(drive) / "INFO_UF2.TXT"
    try:
        text = f.read_text(errors="replace")
    except OSError:
        return None
    info = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    return info


def find_uf2_drives(family, roots=None) -> list[Path]:
    """Mounted UF2 drives whose INFO_UF2.TXT says Board-ID is this family's."""
    roots = mount_points() if roots is None else roots
    out = []
    for r in roots:
        info = read_uf2_info(r)
        if info is not None and info.get("Board-ID") == family.drive_board_id:
            out.append(Path(r))
    return out


def _check_uf2_drive(drive: Path, family) -> None:
    if not drive.is_dir():
        raise FlashError(f"drive {drive} is not a mounted folder (hold BOOTSEL while plugging in the board)")
    info = read_uf2_info(drive)
    if info is None:
        raise FlashError(f"{drive} is not a UF2 boot drive (no INFO_UF2.TXT): hold BOOTSEL while plugging "
                         "in the board and give the drive it mounts")
    if info.get("Board-ID") != family.drive_board_id:
        raise FlashError(f"{drive} is the boot drive of a {info.get('Board-ID', 'unknown')} board, not "
                         f"{family.drive_board_id} ({family.name})")


def copy_bounded(src: Path, dst: Path, timeout: float = COPY_TIMEOUT_S, atomic: bool = False) -> None:
    """Copy a file to a (removable) drive and sync it, giving up after `timeout` seconds. With
    atomic, write DST.tmp and rename it, so the card never holds half a file under DST's name."""
    err: list[BaseException] = []
    target = dst.with_name(dst.name + ".tmp") if atomic else dst

    def work():
        try:
            data = Path(src).read_bytes()
            with open(target, "wb") as f:
                f.write(data)
                f.flush()
                try:
                    os.fsync(f.fileno())
                except OSError:
                    # A UF2 boot drive reboots the board as soon as the last block is written, and
                    # the drive may be gone before the sync: the data reached it.
                    pass
            if atomic:
                os.replace(target, dst)
        except BaseException as e:  # reported to the caller's thread
            err.append(e)

    t = threading.Thread(target=work, name="hilkit-copy", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise FlashError(f"copying {src.name} to {dst.parent} did not finish within {timeout:g} s "
                         "(is the drive still mounted?)")
    if err:
        e = err[0]
        raise FlashError(f"cannot copy {src.name} to {dst.parent}: {getattr(e, 'strerror', None) or e}")


# ------------------------------------------------------------------ verification
def verify(port: str, baud: int, manifest: dict | None, board_id: str, timeout: float = VERIFY_TIMEOUT_S) -> dict:
    """Open the port (retrying while the board reboots) and ask INFO; the INFO dict."""
    from .link import LinkError, open_url
    from .protocol import Client

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            with open_url(port, baud) as link:
                return Client(link, timeout=min(2.0, timeout), retries=2).info()
        except LinkError as e:   # includes protocol timeouts
            last = e
        if time.monotonic() >= deadline:
            raise FlashError(f"{board_id} on {port} did not answer INFO within {timeout:g} s after flashing "
                             f"({last}): check the UART wiring and baud ({baud})")
        time.sleep(0.5)


# ------------------------------------------------------------------ the command
def flash(source, board_id: str, *, uf2=None, drive=None, probe: str | None = None, port: str | None = None,
          baud: int | None = None, base: int | None = None, ssh: str | None = None, ssh_config=None,
          dry_run: bool = False, exp: str = "libm", workdir=None, say=None) -> Plan:
    """Flash `source` onto `board_id` (see the module docstring). `say(line)` gets progress lines
    (stderr by default); with dry_run every command is printed to stdout and nothing is run,
    written or copied."""
    from .boards import get_board
    from .ports import check_free, resolve_port

    from . import ssh as hk_ssh

    say = say or (lambda s: print(s, file=sys.stderr))
    board = get_board(board_id)
    if probe is not None and probe not in ("pyocd", "openocd"):
        raise FlashError(f"unknown probe tool {probe!r}: use pyocd or openocd")
    dest = hk_ssh.destination(ssh, ssh_config, board)   # checked before anything is built
    if dest is not None and (port is not None or probe is not None or drive is not None or uf2 is not None):
        raise FlashError("--ssh copies the program over the network: it takes no --port, --probe, --drive or --uf2")
    if board.runtime == "host" and dest is None:
        raise FlashError(f"board {board.id} runs as a local process: there is nothing to flash "
                         f"(`hilkit run ... --board {board.id}` starts it; --ssh USER@HOST puts it on a Linux machine "
                         "like this one)")
    if probe is not None and board.runtime != "bare-metal":
        raise FlashError(f"board {board.id} runs Linux: it is not flashed with a debug probe (use --ssh)")
    baud = baud or board.baud or 115200
    if port is not None:
        port = resolve_port(port, board.id)
        if not dry_run:
            check_free(port, baud)   # fail before anything is written
    image, manifest = resolve_image(source, board, exp=exp, workdir=workdir)
    plan = Plan(board=board.id, image=image)

    def command(argv: list[str], timeout: float) -> None:
        plan.commands.append(argv)
        if dry_run:
            print(shlex.join(argv))
        else:
            find_tool(argv[0])
            say(f"running: {shlex.join(argv)}")
            run_tool(argv, timeout)

    if probe is not None:
        if board.flash_method == "uf2":
            from .uf2 import boot_warnings
            fam, segs = _uf2_segments(board, image, base)   # refuses images linked for the QEMU twin
            for w in boot_warnings(segs, fam):
                say(f"warning: {w}")
        argv = (pyocd_command if probe == "pyocd" else openocd_command)(board, image, base)
        command(argv, PROBE_TIMEOUT_S)
    elif board.flash_method == "uf2":
        _flash_uf2(plan, board, image, base, uf2, drive, dry_run, say)
    elif board.flash_method == "qemu":
        _flash_qemu_board(plan, board, image, manifest, drive, port, dry_run, say)
    elif dest is not None or board.flash_method == "copy":
        _flash_linux(plan, board, image, manifest, dest, dry_run, say)
    elif board.flash_method == "sdcard":
        _flash_sdcard(plan, board, image, drive, dry_run, say)
    else:
        raise FlashError(f"board {board.id} has no flash method (board.toml flash.method = "
                         f"{board.flash_method!r})")

    # Check the board right away where the flash restarts it (probe, UF2 drive); the other ways
    # need a person (reset an FPGA board, move an SD card, start the program over ssh).
    immediate = probe is not None or (board.flash_method == "uf2" and any(c[0] == "cp" for c in plan.commands))
    if port is not None and immediate:
        if dry_run:
            print(f"# then: INFO on {port} at {baud} baud must report model {_hash(manifest)}")
        else:
            plan.verified = verify(port, baud, manifest, board.id)
            _check_hash(plan.verified, manifest, port)
            say(f"{board.id} on {port} answers: model {plan.verified.get('model_hash')}, "
                f"firmware {plan.verified.get('firmware')}")
    return plan


def _hash(manifest) -> str:
    return (manifest or {}).get("model_hash") or "(any)"


class ModelMismatch(FlashError):
    """The board answers, but runs another model than the one flashed (exit code 1: a failed check)."""


def _check_hash(info: dict, manifest: dict | None, where: str) -> None:
    want = (manifest or {}).get("model_hash")
    if want and info.get("model_hash") != want:
        raise ModelMismatch(f"the board on {where} runs model {info.get('model_hash')}, not {want}: "
                            "the flash did not take (is the board in BOOTSEL/probe mode, the right board?)")


def _uf2_segments(board, image: Path, base: int | None):
    from . import uf2 as U
    fam = U.family_for_board(board)
    segs = U.load_segments(image, base)
    try:
        U.check_ranges(segs, fam, board.flash_bytes)
    except U.UF2Error as e:
        twin = f" -M {board.qemu.machine}" if board.qemu else ""
        raise FlashError(f"{e}: {image} is linked for the QEMU twin{twin}, not for a real {board.id} board; "
                         "give the model file or its `hilkit compile` folder instead, and `hilkit flash` builds "
                         "the hardware image (docs/real-boards.md)") from None
    return fam, segs


def _flash_uf2(plan: Plan, board, image: Path, base, uf2_out, drive, dry_run: bool, say) -> None:
    from . import uf2 as U
    fam, segs = _uf2_segments(board, image, base)
    data = U.write_uf2(segs, fam.id)
    out = Path(uf2_out) if uf2_out else image.with_name(image.name + ".uf2")
    plan.uf2 = out
    if drive is not None:
        drives = [Path(drive)]
        if not dry_run:
            _check_uf2_drive(drives[0], fam)
    else:
        drives = find_uf2_drives(fam)
    if len(drives) > 1:
        raise FlashError(f"{len(drives)} {fam.drive_label} drives are mounted ({', '.join(map(str, drives))}): "
                         "give --drive PATH")
    if not drives and uf2_out is None:
        raise FlashError(f"no {fam.drive_label} drive found (looked for INFO_UF2.TXT in the mounted drives): "
                         f"hold BOOTSEL while plugging in the {board.name}, or give --drive PATH, or --uf2 OUT "
                         "to only write the file")
    for w in U.boot_warnings(segs, fam):   # after the errors: a warning is no reason to stop
        say(f"warning: {w}")
    n = len(data) // U.BLOCK_SIZE
    if dry_run:
        print(f"# write {out} ({n} blocks, family {fam.name} 0x{fam.id:08x})")
        for d in drives:
            dst = Path(d) / UF2_NAME
            plan.commands.append(["cp", str(out), str(dst)])
            print(shlex.join(["cp", str(out), str(dst)]))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    lo = min(a for a, _ in segs)
    hi = max(a + len(d) for a, d in segs)
    say(f"wrote {out}: {n} blocks, family {fam.name} (0x{fam.id:08x}), 0x{lo:08x}-0x{hi - 1:08x}")
    if drives:
        dst = drives[0] / UF2_NAME
        plan.commands.append(["cp", str(out), str(dst)])
        copy_bounded(out, dst)
        plan.copied_to = dst
        say(f"copied to {dst}: the board reboots into the new firmware")
    else:
        say(f"no {fam.drive_label} drive mounted: copy {out} to it (hold BOOTSEL while plugging in the board)")


def _flash_qemu_board(plan: Plan, board, image: Path, manifest, drive, port, dry_run: bool, say) -> None:
    """MPS2/MPS3: under QEMU the image is loaded at start; a real FPGA board loads it from its
    configuration drive (MB/.../images.txt names the file)."""
    if drive is not None or port is not None:
        if drive is None:
            raise FlashError(f"hilkit cannot program a real {board.name} over {port}: give --drive PATH of the "
                             "board's configuration drive (see docs/real-boards.md)")
        drive = Path(drive)
        binary = _bin_image(image)
        dst = drive / "SOFTWARE" / MPS_IMAGE_NAME
        plan.commands.append(["cp", str(binary), str(dst)])
        if dry_run:
            print(shlex.join(["cp", str(binary), str(dst)]))
        else:
            if not (drive / "MB").is_dir():
                raise FlashError(f"{drive} is not an MPS2/MPS3 configuration drive (no MB/ folder)")
            dst.parent.mkdir(exist_ok=True)
            copy_bounded(binary, dst, atomic=True)
            plan.copied_to = dst
        plan.notes.append(f"in the images.txt of the board's {board.id.split('-')[-1].upper()} folder under MB/: "
                          f"IMAGE0ADDRESS: 0x00000000 and IMAGE0FILE: \\SOFTWARE\\{MPS_IMAGE_NAME}; then reset the board")
        say(plan.notes[-1])
        return
    from . import qemu
    cmd = qemu.system_command(board, image.resolve(), 0)
    cmd = [c.replace("tcp:127.0.0.1:0,", "tcp:127.0.0.1:PORT,") for c in cmd]
    plan.commands.append(cmd)
    if dry_run:
        print(shlex.join(cmd))
        return
    from .protocol import Client
    from .runner import start
    with start(board, image, count_instructions=False) as target:
        info = Client(target.link, timeout=5.0, retries=1).info()
    _check_hash(info, manifest, f"QEMU {board.qemu.machine}")
    plan.verified = info
    say(f"{board.id}: QEMU loads {image} at start; it answers INFO with model {info.get('model_hash')} "
        f"(run it with `hilkit run ... --board {board.id}`)")


def _flash_linux(plan: Plan, board, image: Path, manifest, dest, dry_run: bool, say) -> None:
    """Copy the program to the board with scp (always) and start it once over `ssh -T` to check it
    answers INFO with the model (host/ssh.py); without --ssh, print the steps."""
    from . import ssh as hk_ssh
    if dest is None:
        name = hk_ssh.remote_name(board.id, image)
        steps = [f"give --ssh USER@HOST[:PORT] to copy {image} there (as ~/{name}) and check that it answers",
                 f"then: hilkit run DIR --board {board.id} --ssh USER@HOST[:PORT]"]
        plan.notes += steps
        for s in steps:
            say(s)
        return
    plan.commands += hk_ssh.plan(dest, board.id, image, copy="always")
    if dry_run:
        for argv in plan.commands:
            print(shlex.join(argv))
        print(f"# INFO over its stdin/stdout must report model {_hash(manifest)}")
        return
    from .runner import start
    with start(board, image, ssh=dest, ssh_copy="always", say=say) as target:
        plan.verified = target.info
    _check_hash(plan.verified, manifest, f"{dest} (over ssh)")
    say(f"{board.id} at {dest} answers: model {plan.verified.get('model_hash')} "
        f"(run it with `hilkit run ... --board {board.id} --ssh {dest}`)")


def _flash_sdcard(plan: Plan, board, image: Path, drive, dry_run: bool, say) -> None:
    if drive is None:
        raise FlashError(f"{board.id} boots from an SD card: give --drive PATH of its mounted boot partition")
    drive = Path(drive)
    binary = _bin_image(image)
    dst = drive / RPI_KERNEL_NAME
    plan.commands.append(["cp", str(binary), str(dst)])
    config = ["arm_64bit=1", f"kernel={RPI_KERNEL_NAME}", "enable_uart=1", "dtoverlay=disable-bt"]
    if dry_run:
        print(shlex.join(["cp", str(binary), str(dst)]))
    else:
        if not any((drive / f).is_file() for f in ("bootcode.bin", "start.elf", "fixup.dat", "config.txt")):
            raise FlashError(f"{drive} is not a Raspberry Pi boot partition (no bootcode.bin, start.elf or config.txt)")
        copy_bounded(binary, dst, atomic=True)
        plan.copied_to = dst
    try:
        have = (drive / "config.txt").read_text(errors="replace").split()
    except OSError:
        have = []
    missing = [c for c in config if c not in have]
    if missing:
        plan.notes.append(f"add to {drive / 'config.txt'}: " + "  ".join(missing))
        say(plan.notes[-1])
