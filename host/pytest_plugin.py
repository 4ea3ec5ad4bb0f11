"""hilkit's pytest plugin: run the same tests on QEMU and on real boards.

Installed as a `pytest11` entry point, so any pytest run in an environment with hilkit has:

- `--hil-board ID` (repeatable; default `mps2-an386`): every test that uses the `hil_board`
  fixture (directly or through `hil_client`/`hil_deploy`) runs once per board.
- `--hil-port [BOARD=]DEV` (repeatable; DEV may be `auto`): that board is real hardware on that
  serial port; boards without a port run under QEMU (or natively for `host`).
  `--hil-probe pyocd|openocd` / `--hil-drive PATH` flash each model onto it first; without them the
  board must already run the model (its INFO hash is checked).
- markers `qemu` (skipped for boards on a port, and where QEMU is missing) and `hardware`
  (skipped without a port).
- fixtures: `hil_board` (the Board), `hil_port`, `hil_compile(model, board)` (compiled directory,
  built once per session and shared by xdist workers), `hil_deploy(model)` (a started target's
  client), and `hil_client`, which deploys the module's `hil_model` fixture (override it).

A client has `info()`, `infer(x)`, `bench(n)` (hilkit.host.protocol.Client) plus `board`, `kind`
(host, qemu-user, qemu-system, serial), `manifest`, `compiled` and `instruction_counts()`.

With pytest-xdist each worker builds in its own directory (pytest's per-worker tmp dirs; shared
builds are made once under a file lock), QEMU gets a free TCP port per target (with retries), and
a real serial port is held by one worker at a time (a lock file per port).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

import pytest

DEFAULT_BOARDS = ("mps2-an386",)
PORT_LOCK_TIMEOUT_S = 900.0


# ------------------------------------------------------------------ options and markers
def pytest_addoption(parser):
    g = parser.getgroup("hilkit", "hilkit hardware in the loop")
    g.addoption("--hil-board", action="append", default=[], metavar="ID",
                help="board to run hil tests on (repeatable; `qemu` = every board with a QEMU twin, "
                     "`all` = those and the host; default: mps2-an386)")
    g.addoption("--hil-port", action="append", default=[], metavar="[BOARD=]DEV",
                help="serial port (or URL, or `auto`) of a real board; BOARD= is needed with several boards")
    g.addoption("--hil-baud", type=int, default=None, metavar="BAUD", help="baud rate for --hil-port")
    g.addoption("--hil-probe", choices=["pyocd", "openocd"], default=None,
                help="flash real boards with this probe tool before their tests")
    g.addoption("--hil-drive", default=None, metavar="PATH", help="flash real boards through this drive (UF2)")
    g.addoption("--hil-workdir", default=None, metavar="DIR",
                help="where compiled models are kept (default: pytest's temporary directory)")


def pytest_configure(config):
    config.addinivalue_line("markers", "qemu: runs firmware under QEMU (skipped for boards on --hil-port)")
    config.addinivalue_line("markers", "hardware: needs a real board (--hil-port); skipped without one")
    hil_ports(config)   # a bad --hil-port is a usage error now, not one error per test


def hil_boards(config) -> list[str]:
    from hilkit.host import boards

    out = []
    for name in config.getoption("hil_board") or DEFAULT_BOARDS:
        if name in ("qemu", "all"):
            out += [b.id for b in boards.list_boards()
                    if b.can_emulate or (name == "all" and b.runtime == "host")]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def hil_ports(config) -> dict[str, str]:
    """{board id: port} from --hil-port; a bare DEV belongs to the only --hil-board."""
    out: dict[str, str] = {}
    boards = hil_boards(config)
    for spec in config.getoption("hil_port") or []:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)=(.+)", spec)
        if m and "://" not in m.group(1):
            out[m.group(1)] = m.group(2)
        elif len(boards) == 1:
            out[boards[0]] = spec
        else:
            raise pytest.UsageError(f"--hil-port {spec}: with several --hil-board, say which board: "
                                    f"--hil-port BOARD={spec}")
    return out


def pytest_generate_tests(metafunc):
    if "hil_board" in metafunc.fixturenames:
        ids = hil_boards(metafunc.config)
        metafunc.parametrize("hil_board", ids, ids=ids, indirect=True, scope="session")


def _board_of(item) -> str | None:
    cs = getattr(item, "callspec", None)
    return cs.params.get("hil_board") if cs is not None else None


def _why_not_runnable(board_id: str, on_port: bool) -> str | None:
    """Why this board's tests cannot run here (None: they can)."""
    import shutil

    from hilkit.codegen import build
    from hilkit.host import boards

    try:
        b = boards.get_board(board_id)
        build.check_toolchain(b)
    except Exception as e:  # BoardError, BuildError: a clear reason to skip
        return str(e)
    if on_port:
        return None
    if b.runtime != "host" and b.qemu is None:
        return f"board {b.id} has no QEMU twin: give --hil-port {b.id}=DEV"
    if b.qemu is not None and shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


def pytest_runtest_setup(item):
    ports = hil_ports(item.config)
    board = _board_of(item)
    on_port = board in ports if board is not None else bool(ports)
    if item.get_closest_marker("hardware") is not None and not on_port:
        pytest.skip("hardware test: no --hil-port" + (f" for board {board}" if board else ""))
    if item.get_closest_marker("qemu") is not None and board is not None and on_port:
        pytest.skip(f"QEMU test: board {board} is real hardware on {ports[board]}")
    if board is not None:
        why = _why_not_runnable(board, on_port)
        if why:
            pytest.skip(why)


# ------------------------------------------------------------------ shared builds
def _worker_id(config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "master")


@contextlib.contextmanager
def file_lock(path: Path, timeout: float):
    """An exclusive lock between processes (xdist workers, other pytest runs) on a lock file."""
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout:g} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class BuildCache:
    """Directories made once per key and shared by every xdist worker of this run: the first
    worker makes it under a lock, the others wait and reuse it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, make) -> Path:
        """The directory for key, made by make(path) the first time."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        d = self.root / safe
        done = d / ".hil-done"
        if done.is_file():
            return d
        with file_lock(self.root / (safe + ".lock"), timeout=1800):
            if not done.is_file():
                d.mkdir(parents=True, exist_ok=True)
                make(d)
                done.write_text("ok\n")
        return d


@pytest.fixture(scope="session")
def hil_cache(request, tmp_path_factory) -> BuildCache:
    opt = request.config.getoption("hil_workdir")
    if opt:
        root = Path(opt)
    else:
        base = tmp_path_factory.getbasetemp()
        # xdist gives each worker its own basetemp (popen-gwN) under the run's: share the parent.
        root = base.parent if _worker_id(request.config) != "master" else base
    return BuildCache(root / "hil-builds")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def hil_board(request):
    """The board of this test (parametrized from --hil-board)."""
    from hilkit.host import boards
    return boards.get_board(getattr(request, "param", None) or hil_boards(request.config)[0])


@pytest.fixture(scope="session")
def hil_port(request, hil_board) -> str | None:
    """The serial port of this board (None: QEMU or native), `auto` resolved."""
    from hilkit.host import ports
    port = hil_ports(request.config).get(hil_board.id)
    return ports.resolve_port(port, hil_board.id)


@pytest.fixture(scope="session")
def hil_compile(hil_cache):
    """compile(model, board, exp="libm") -> compiled directory (a `hilkit compile` output), built
    once per (model contents, board, exp) for the whole run."""
    from hilkit.host import boards
    from hilkit.host.compile import compile_model, load_manifest

    def compile_(model, board, exp: str = "libm") -> Path:
        board = boards.get_board(board)
        p = Path(model)
        if p.is_dir():
            man = load_manifest(p)
            if man["board"] != board.id:
                raise pytest.UsageError(f"{p} was compiled for {man['board']}, not {board.id}")
            return p
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        return hil_cache.get(f"{p.stem}-{digest}-{board.id}-{exp}",
                             lambda d: compile_model(p, board.id, d, exp=exp))
    return compile_


class HilClient:
    """A running model on a board: the protocol client's info/infer/bench, and where it runs."""

    def __init__(self, target, client, board, compiled: Path, manifest: dict):
        self.target, self.client, self.board = target, client, board
        self.compiled, self.manifest = compiled, manifest

    @property
    def kind(self) -> str:
        return self.target.kind

    def info(self) -> dict:
        return self.client.info()

    def infer(self, x, timeout: float | None = None):
        return self.client.infer(x, timeout)

    def bench(self, n: int, timeout: float | None = None) -> dict:
        return self.client.bench(n, timeout)

    def instruction_counts(self):
        """Per-inference guest instruction counts since the last call (None off QEMU)."""
        return self.target.instruction_counts()


@pytest.fixture
def hil_deploy(request, hil_compile, hil_board):
    """deploy(model, board=None, exp="libm", timeout=5.0) -> HilClient: compile (cached), flash when
    the board is on a port and --hil-probe/--hil-drive say how, start it (QEMU when no port), and
    check it runs that model. The board defaults to this test's `hil_board` (so a test using this
    fixture runs once per --hil-board). Every target is closed at the end of the test."""
    from hilkit.host import boards, flash, ports, protocol, runner

    stack = contextlib.ExitStack()
    config = request.config

    def deploy(model, board=None, exp: str = "libm", timeout: float = 5.0) -> HilClient:
        board = boards.get_board(hil_board if board is None else board)
        out = hil_compile(model, board, exp)
        from hilkit.host.compile import load_manifest
        man = load_manifest(out)
        image = out / man["image"]
        port = ports.resolve_port(hil_ports(config).get(board.id), board.id)
        baud = config.getoption("hil_baud")
        if port is not None:
            lock = Path(tempfile.gettempdir()) / ("hilkit-port-" + re.sub(r"[^A-Za-z0-9]", "_", port) + ".lock")
            stack.enter_context(file_lock(lock, PORT_LOCK_TIMEOUT_S))
            if config.getoption("hil_probe") or config.getoption("hil_drive"):
                flash.flash(out, board.id, probe=config.getoption("hil_probe"), drive=config.getoption("hil_drive"),
                            port=port, baud=baud)
        target = stack.enter_context(runner.start(board, image, port=port, baud=baud))
        client = protocol.Client(target.link, timeout=timeout)
        info = client.info()
        if info.get("model_hash") != man.get("model_hash"):
            pytest.fail(f"{board.id} on {port or target.kind} runs model {info.get('model_hash')}, not "
                        f"{man.get('model_hash')}: flash it (--hil-probe or --hil-drive)", pytrace=False)
        return HilClient(target, client, board, out, man)

    with stack:
        yield deploy


@pytest.fixture
def hil_model():
    """The model `hil_client` deploys: override this fixture (a path to a .npz or a compiled dir)."""
    pytest.skip("override the `hil_model` fixture (a model file or compiled directory) to use hil_client")


@pytest.fixture
def hil_client(hil_deploy, hil_model) -> HilClient:
    """The module's `hil_model` running on this test's board."""
    return hil_deploy(hil_model)


def pytest_report_header(config):
    if not (config.getoption("hil_board") or config.getoption("hil_port")):
        return None
    ports = hil_ports(config)
    boards = hil_boards(config)
    where = ", ".join(f"{b} ({'port ' + ports[b] if b in ports else 'QEMU/native'})" for b in boards)
    return f"hilkit: boards {where}; worker {os.environ.get('PYTEST_XDIST_WORKER', 'master')}"
