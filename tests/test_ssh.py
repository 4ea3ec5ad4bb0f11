"""`hilkit flash` and `hilkit run` with `--ssh`, against a real OpenSSH server.

A module fixture starts sshd on 127.0.0.1 (and ::1 where the machine has it) at a free port, as the
current user, root or not: a temporary host key, a user key in its authorized_keys, its own
sshd_config (UsePAM no, StrictModes no, its own PidFile, `-D -e` with stderr in a log file), and an
ssh config file (the key, a known_hosts file holding the host key, StrictHostKeyChecking yes) that
hilkit gets with --ssh-config. The server's ForceCommand is a small script that plays the board:
every session starts in a temporary folder (the board's login directory), and `./hk_*` programs
built for aarch64 run under `qemu-aarch64 -cpu cortex-a72` (Debian's qemu-user registers no binfmt
handler); everything else (test, chmod/mv, scp's sftp-server) runs as sent.

Every hilkit command runs through the installed console script, in a subprocess.
"""
from __future__ import annotations

import hashlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HILKIT = Path(sys.executable).parent / "hilkit"   # the venv's console script
# Where Debian keeps the server side (not on a normal user's PATH).
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/lib/openssh",
                             "/usr/libexec/openssh", "/usr/libexec"])
# The programs these tests run besides hilkit's builds (tests/test_setup_packages.py checks that
# setup installs each).
RUNTIME_TOOLS = ("sshd", "ssh", "scp", "ssh-keygen", "sftp-server")
FAIL_WITHIN_S = 30.0      # a failure must end well before this (ssh's ConnectTimeout is 10 s)
TEST_SAMPLES = 360        # the digits test split


def find_program(name: str) -> str | None:
    """The absolute path of one of RUNTIME_TOOLS (sshd must be started by its absolute path)."""
    return shutil.which(name, path=SBIN_PATH)


def free_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6_loopback() -> bool:
    try:
        free_port(socket.AF_INET6, "::1")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ the server
BOARD_SCRIPT = """#!/bin/sh
# The board's side of every session: start in the login directory; an aarch64 hk_ program runs
# under QEMU user mode (no binfmt here), everything else (test, chmod/mv, sftp-server) as sent.
cd {home} || exit 1
cmd=$SSH_ORIGINAL_COMMAND
case $cmd in
  ./hk_*)
    prog=${{cmd%% *}}
    machine=$(od -An -tx1 -j18 -N2 "$prog" 2>/dev/null | tr -d ' \\n')
    if [ "$machine" = b700 ]; then exec qemu-aarch64 -cpu cortex-a72 "$prog"; fi ;;
esac
exec /bin/sh -c "$cmd"
"""


class SshServer:
    """sshd on loopback for the current user, with everything it reads in one temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "board-home"           # the board's login directory
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.ipv6 = have_ipv6_loopback()
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._made_privsep_dir = False

    # -- keys and files
    def _keygen(self, name: str) -> Path:
        key = self.root / name
        subprocess.run([find_program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", f"hilkit-test-{name}",
                        "-f", str(key)], check=True, capture_output=True, timeout=30)
        return key

    def client_config(self, key: Path, name: str) -> Path:
        cfg = self.root / name
        cfg.write_text(f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
                       f"  UserKnownHostsFile {self.root / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
                       "  StrictHostKeyChecking yes\n  UpdateHostKeys no\n  PasswordAuthentication no\n"
                       "  KbdInteractiveAuthentication no\n")
        return cfg

    def _write_server_files(self) -> None:
        self.home.mkdir()
        self.host_key = self._keygen("host_key")
        user_key = self._keygen("user_key")
        stranger_key = self._keygen("stranger_key")      # never in authorized_keys
        (self.root / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
        script = self.root / "board.sh"
        script.write_text(BOARD_SCRIPT.format(home=shlex.quote(str(self.home))))
        script.chmod(0o755)
        self.config = self.client_config(user_key, "ssh_config")
        self.stranger_config = self.client_config(stranger_key, "ssh_config_stranger")

    def _sshd_config(self) -> Path:
        listen = "ListenAddress 127.0.0.1\n" + ("ListenAddress ::1\n" if self.ipv6 else "")
        cfg = self.root / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\n{listen}HostKey {self.host_key}\nPidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            "UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {self.user}\nForceCommand {self.root / 'board.sh'}\n"
            f"Subsystem sftp {find_program('sftp-server')}\n"
            "AllowTcpForwarding no\nX11Forwarding no\nPrintMotd no\nLogLevel VERBOSE\n")
        return cfg

    # -- process
    def start(self) -> None:
        sshd = find_program("sshd")
        assert sshd, "sshd is not installed: `make system-packages` installs openssh-server"
        assert find_program("sftp-server"), "sftp-server is not installed (openssh-sftp-server, with openssh-server)"
        self._write_server_files()
        if os.getuid() == 0 and not os.path.isdir("/run/sshd"):   # root's sshd chroots its pre-auth child here
            os.makedirs("/run/sshd", mode=0o755)
            self._made_privsep_dir = True
        for _ in range(3):   # another process may take the port between free_port() and sshd's bind
            self.port = free_port()
            cfg = self._sshd_config()
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                if f"listening on 127.0.0.1 port {self.port}" in self.log.read_text(errors="replace"):
                    break
                time.sleep(0.05)
            text = self.log.read_text(errors="replace")
            if self.proc.poll() is None and f"listening on 127.0.0.1 port {self.port}" in text:
                break
            self.stop()
            if "Address already in use" not in text:
                pytest.fail(f"sshd did not start: {text.strip()[-2000:]}")
        else:
            pytest.fail("sshd found no free port in 3 tries")
        hosts = [f"[127.0.0.1]:{self.port}"] + ([f"[::1]:{self.port}"] if self.ipv6 else [])
        pub = " ".join(Path(f"{self.host_key}.pub").read_text().split()[:2])
        (self.root / "known_hosts").write_text("".join(f"{h} {pub}\n" for h in hosts))
        # One login before any test, so a server that refuses this user says why here (as root with
        # UsePAM no, sshd refuses an account whose password is locked: '!' in /etc/shadow).
        probe = subprocess.run([find_program("ssh"), "-F", str(self.config), "-o", "BatchMode=yes", "-p",
                                str(self.port), "-T", f"{self.user}@127.0.0.1", "true"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode != 0:
            self.close()
            pytest.fail(f"sshd refuses {self.user}: {probe.stderr.strip()}; its log ends: "
                        + " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-4:]))

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if self._made_privsep_dir:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass

    # -- helpers for the tests
    def dest(self, host: str = "127.0.0.1") -> str:
        return f"{self.user}@{host}:{self.port}"

    def clear(self) -> None:
        """An empty board: nothing copied yet."""
        for f in self.home.iterdir():
            f.unlink()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    try:
        server.start()
        yield server
    finally:
        server.close()


# ------------------------------------------------------------------ hilkit in a subprocess
class Ran:
    def __init__(self, p: subprocess.CompletedProcess, seconds: float):
        self.returncode, self.stdout, self.stderr, self.seconds = p.returncode, p.stdout, p.stderr, seconds

    @property
    def commands(self) -> list[str]:
        """The external commands hilkit printed as it ran them (`$ CMD` lines on stderr)."""
        return [line[2:] for line in self.stderr.splitlines() if line.startswith("$ ")]

    @property
    def messages(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip() and not line.startswith("$ ")]

    def __repr__(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.1f} s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def hilkit(*args, cwd: Path, timeout: float = 900) -> Ran:
    t0 = time.monotonic()
    p = subprocess.run([str(HILKIT), *map(str, args)], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout, check=False,
                       env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    return Ran(p, time.monotonic() - t0)


def remote_name(board: str, image: Path) -> str:
    """What the board's file is called: hk_firmware-BOARD-<16 hex of the image's SHA-256> (docs)."""
    return f"hk_firmware-{board}-{hashlib.sha256(image.read_bytes()).hexdigest()[:16]}"


def remote_programs(home: Path) -> list[str]:
    """Processes still running a program of the board's folder (none may outlive a hilkit command)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(d / "cwd")
            except OSError:
                continue
            if "hk_firmware-" in cmd and cwd == str(home):
                found.append(f"{d.name} {cmd}")
    return found


def assert_nothing_left(home: Path) -> None:
    deadline = time.monotonic() + 5
    while remote_programs(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not remote_programs(home)


def assert_one_error(r: Ran, *needles: str) -> str:
    assert r.returncode == 2, r
    assert len(r.messages) == 1 and r.messages[0].startswith("hilkit: error: "), r
    assert r.seconds < FAIL_WITHIN_S, r
    for n in needles:
        assert n in r.messages[0], r
    return r.messages[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working folder (hilkit's out/run cache lands here) with digits-cnn trained by its recipe,
    compiled for the host board, and another model (digits-mlp, 1 epoch) compiled likewise."""
    w = tmp_path_factory.mktemp("work")
    for args in (["train", "digits-cnn", "-o", "cnn.npz"], ["train", "digits-mlp", "--epochs", "1", "-o", "mlp.npz"],
                 ["compile", "cnn.npz", "--board", "host", "-o", "cnn-host"],
                 ["compile", "mlp.npz", "--board", "host", "-o", "mlp-host"]):
        r = hilkit(*args, cwd=w)
        assert r.returncode == 0, r
    return w


def manifest(d: Path) -> dict:
    return json.loads((d / "hilkit.json").read_text())


def image(d: Path) -> Path:
    return d / manifest(d)["image"]


def ssh_args(server: SshServer, config: Path | None = None, host: str = "127.0.0.1") -> list[str]:
    return ["--ssh", server.dest(host), "--ssh-config", config or server.config]


# ------------------------------------------------------------------ flash and run, host board
def test_flash_host_board_over_ssh(sshd, work):
    d = work / "cnn-host"
    sshd.clear()
    dry = hilkit("flash", d, "--board", "host", *ssh_args(sshd), "--dry-run", cwd=work)
    assert dry.returncode == 0, dry
    planned = [line for line in dry.stdout.splitlines() if not line.startswith("#")]
    assert not list(sshd.home.iterdir())                       # a dry run touches nothing

    r = hilkit("flash", d, "--board", "host", *ssh_args(sshd), cwd=work)
    assert r.returncode == 0, r
    assert r.commands == planned                                # --dry-run printed exactly these
    name = remote_name("host", image(d))
    assert [shlex.split(c)[0] for c in r.commands] == ["scp", "ssh", "ssh"]
    assert shlex.split(r.commands[-1])[-1] == f"./{name}"
    for c in r.commands:   # every command: the config file, never a prompt, a connect timeout, the port
        argv = shlex.split(c)
        assert argv[1:3] == ["-F", str(sshd.config)]
        assert "BatchMode=yes" in argv and "ConnectTimeout=10" in argv
        assert argv[argv.index("-P" if argv[0] == "scp" else "-p") + 1] == str(sshd.port)
    assert (sshd.home / name).read_bytes() == image(d).read_bytes()
    assert os.access(sshd.home / name, os.X_OK)
    assert sorted(p.name for p in sshd.home.iterdir()) == [name]   # no .part left behind
    assert f"host at {sshd.dest()} answers: model {manifest(d)['model_hash']}" in r.stderr
    assert_nothing_left(sshd.home)


def test_run_host_board_over_ssh(sshd, work):
    sshd.clear()
    out = work / "host-run.json"
    r = hilkit("run", "cnn.npz", "--board", "host", *ssh_args(sshd), "--json", out, cwd=work)
    assert r.returncode == 0, r
    rep = json.loads(out.read_text())
    assert rep["samples"] == TEST_SAMPLES and rep["runtime"] == "ssh" and rep["board"] == "host"
    assert rep["top1_agreement"] >= 0.997, rep
    assert rep["max_abs_diff"] < 1e-4
    assert rep["model_hash"] == manifest(work / "cnn-host")["model_hash"]
    assert rep["latency_source"] == "clock_gettime (median)" and rep["latency_us"] > 0
    assert 0 < rep["wall_s"] < r.seconds
    assert "wall time" in r.stdout
    # The board was empty: check, copy, rename, start; exactly what --dry-run prints.
    assert [shlex.split(c)[0] for c in r.commands] == ["ssh", "scp", "ssh", "ssh"]
    assert shlex.split(r.commands[0])[-1].startswith("test -x hk_firmware-host-")
    dry = hilkit("run", "cnn.npz", "--board", "host", *ssh_args(sshd), "--dry-run", cwd=work)
    assert dry.returncode == 0 and dry.stdout.splitlines() == r.commands, dry
    assert_nothing_left(sshd.home)

    # Now it is there: no copy, only the check and the start.
    again = hilkit("run", "cnn.npz", "--board", "host", *ssh_args(sshd), "--limit", "40", "--json", out, cwd=work)
    assert again.returncode == 0, again
    assert again.commands == [r.commands[0], r.commands[-1]]
    assert json.loads(out.read_text())["samples"] == 40


def test_ipv6_literal_in_brackets(sshd, work):
    if not sshd.ipv6:
        pytest.skip("this machine has no IPv6 loopback (::1)")
    d = work / "cnn-host"
    sshd.clear()
    r = hilkit("flash", d, "--board", "host", *ssh_args(sshd, host="[::1]"), cwd=work)
    assert r.returncode == 0, r
    name = remote_name("host", image(d))
    assert shlex.split(r.commands[0])[-1] == f"{sshd.user}@[::1]:{name}.part"   # scp: brackets
    assert shlex.split(r.commands[-1])[-2:] == [f"{sshd.user}@::1", f"./{name}"]  # ssh: the port apart
    assert "from ::1 port" in sshd.log.read_text()              # it really came in over IPv6


# ------------------------------------------------------------------ rpi4: aarch64 under qemu-aarch64
@pytest.mark.qemu
def test_rpi4_over_ssh(sshd, work):
    sshd.clear()
    f = hilkit("flash", "cnn.npz", "--board", "rpi4", *ssh_args(sshd), cwd=work)
    assert f.returncode == 0, f
    [copied] = list(sshd.home.iterdir())
    assert copied.name.startswith("hk_firmware-rpi4-")
    head = copied.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[18:20] == b"\xb7\x00"   # EM_AARCH64: only QEMU runs it here
    model_hash = manifest(work / "cnn-host")["model_hash"]
    assert f"rpi4 at {sshd.dest()} answers: model {model_hash}" in f.stderr

    out = work / "rpi4-run.json"
    r = hilkit("run", "cnn.npz", "--board", "rpi4", *ssh_args(sshd), "--json", out, cwd=work)
    assert r.returncode == 0, r
    rep = json.loads(out.read_text())
    assert rep["samples"] == TEST_SAMPLES and rep["runtime"] == "ssh" and rep["board"] == "rpi4"
    assert rep["top1_agreement"] >= 0.997, rep
    assert rep["model_hash"] == model_hash
    assert rep["latency_source"] == "clock_gettime (median)" and rep["latency_us"] > 0
    assert rep["energy_source"].startswith("estimate: latency x board active power")
    assert 0 < rep["wall_s"] < r.seconds
    assert [shlex.split(c)[0] for c in r.commands] == ["ssh", "ssh"]     # flashed: not copied again
    assert shlex.split(r.commands[-1])[-1] == f"./{copied.name}"
    assert_nothing_left(sshd.home)


# ------------------------------------------------------------------ failures: exit 2, one line, soon
def test_dead_host(sshd, work):
    dest = f"{sshd.user}@127.0.0.1:{free_port()}"   # nothing listens there
    for cmd in ("flash", "run"):
        r = hilkit(cmd, work / "cnn-host", "--board", "host", "--ssh", dest, "--ssh-config", sshd.config, cwd=work)
        assert_one_error(r, f"to {dest} failed", "Connection refused")


def test_refused_key(sshd, work):
    sshd.clear()
    for cmd in ("flash", "run"):
        r = hilkit(cmd, work / "cnn-host", "--board", "host", *ssh_args(sshd, sshd.stranger_config), cwd=work)
        assert_one_error(r, "Permission denied (publickey)", "authorized_keys")
    assert not list(sshd.home.iterdir())
    assert "Failed publickey" in sshd.log.read_text() or "Connection closed by authenticating user" in \
        sshd.log.read_text()


def _flashed(sshd, work, d: Path) -> Path:
    sshd.clear()
    r = hilkit("flash", d, "--board", "host", *ssh_args(sshd), cwd=work)
    assert r.returncode == 0, r
    return sshd.home / remote_name("host", image(d))


def test_remote_program_that_exits_at_once(sshd, work):
    d = work / "cnn-host"
    remote = _flashed(sshd, work, d)
    remote.write_text("#!/bin/sh\necho 'not a hilkit firmware' >&2\nexit 3\n")   # it is there: run uses it
    r = hilkit("run", d, "--board", "host", *ssh_args(sshd), cwd=work)
    assert_one_error(r, f"./{remote.name} on {sshd.dest()} ended (exit status 3): not a hilkit firmware")
    assert [shlex.split(c)[0] for c in r.commands] == ["ssh", "ssh"]


def test_wrong_model_on_the_remote(sshd, work):
    d = work / "cnn-host"
    remote = _flashed(sshd, work, d)
    shutil.copyfile(image(work / "mlp-host"), remote)           # another model under this image's name
    r = hilkit("run", d, "--board", "host", *ssh_args(sshd), cwd=work)
    assert_one_error(r, f"runs model {manifest(work / 'mlp-host')['model_hash']}, "
                        f"not {manifest(d)['model_hash']}", f"remove ~/{remote.name}")
    assert_nothing_left(sshd.home)


# ------------------------------------------------------------------ usage errors (no server needed)
@pytest.mark.parametrize("args, says", [
    (["run", "--ssh", "pi@h", "--port", "/dev/ttyUSB0"], "not allowed with argument"),
    (["run", "--ssh", "pi@h", "--qemu"], "not allowed with argument"),
    (["flash", "--ssh", "pi@h", "--port", "/dev/ttyUSB0"], "not allowed with argument"),
    (["run", "--ssh", "pi@fe80::1"], "IPv6 address in brackets"),
    (["run", "--ssh=-oProxyCommand=x"], "is not USER@HOST[:PORT]"),
    (["run", "--ssh", "pi@h:70000"], "port 70000 is not in 1..65535"),
    (["flash", "--ssh", "pi@[nothost]"], "is not an IPv6 address"),
    (["run", "--ssh-config", "x"], "--ssh-config is only used with --ssh"),
    (["run", "--dry-run"], "needs --ssh"),
    (["run", "--ssh", "pi@h", "--ssh-config", "/nonexistent/cfg"], "no such file"),
])
def test_usage_errors(args, says, work):
    r = hilkit(args[0], "cnn.npz", "--board", "rpi4", *args[1:], cwd=work)
    assert r.returncode == 2, r
    assert says in r.stderr, r
    assert not r.commands                                       # nothing was started


def test_ssh_on_a_bare_metal_board(work):
    for cmd in ("run", "flash"):
        r = hilkit(cmd, "cnn.npz", "--board", "mps2-an386", "--ssh", "pi@h", cwd=work)
        assert_one_error(r, "board mps2-an386 is not a Linux board")
