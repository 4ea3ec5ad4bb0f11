"""Linux boards over ssh: the firmware copied with scp and run with `ssh -T`, its stdin/stdout the link.

`--ssh USER@HOST[:PORT]` names the board (an IPv6 address in brackets: `pi@[fe80::1%eth0]:22`).
Every ssh and scp gets `BatchMode=yes` (never a password or host-key prompt) and a connect
timeout; `--ssh-config FILE` is passed as `-F FILE`, so a lab gives keys and known hosts without
touching ~/.ssh. Each external command is printed as `$ CMD` on stderr before it runs.

The program lives in the login directory as `hk_firmware-<board>-<first 16 hex digits of the
image's SHA-256>`: its name says what is in it. A copy is written as NAME.part and renamed, so a
file with that name is whole, and `test -x NAME` on the board tells whether it must be copied
(`hilkit run` copies only then, `hilkit flash` always). The model is checked regardless: the
program must answer INFO with the compiled model's hash (the caller compares).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hilkit.core.proc import die_with_parent

from .errors import HilkitError, UsageError
from .link import LinkClosed, PipeLink

CONNECT_TIMEOUT_S = 10      # ssh's ConnectTimeout: a host that does not answer fails after this
ALIVE_INTERVAL_S = 5        # ServerAliveInterval x ServerAliveCountMax: a vanished board is noticed
ALIVE_COUNT = 3
COMMAND_TIMEOUT_S = 60.0    # the check and rename commands, and scp
# The ssh linux boards this serves: Linux user programs, and the host board (the same program a
# machine like this one runs natively).
RUNTIMES = ("linux-user", "host")

_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")   # a host name, an address or an ssh config alias
_DEST = re.compile(r"(?:(?P<user>[^@]*)@)?(?P<host>\[[^\]]*\]|[^\[\]:@]*)(?::(?P<port>[0-9]+))?")


class SshError(HilkitError):
    """ssh or scp to a board failed: no connection, a refused key, a command that failed there."""


@dataclass(frozen=True)
class Destination:
    """Where a board is reached over ssh: `USER@HOST[:PORT]` and an optional ssh config file."""
    text: str
    user: str | None
    host: str                  # without brackets
    port: int | None
    config: Path | None = None

    def __str__(self) -> str:
        return self.text

    @property
    def login(self) -> str:
        """ssh's destination: user@host (ssh takes IPv6 addresses without brackets, the port apart)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def scp_login(self) -> str:
        """scp's host part: an IPv6 address in brackets, since a colon ends it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    def _options(self, tool: str) -> list[str]:
        argv = [tool]
        if self.config is not None:
            argv += ["-F", str(self.config)]
        # On the command line these come before the config file's values, so they always hold.
        argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
                 "-o", f"ServerAliveInterval={ALIVE_INTERVAL_S}", "-o", f"ServerAliveCountMax={ALIVE_COUNT}"]
        if self.port is not None:
            argv += ["-p" if tool == "ssh" else "-P", str(self.port)]
        return argv

    def ssh(self, remote_command: str) -> list[str]:
        """`ssh ... -T DEST COMMAND` (COMMAND is run by the login shell there)."""
        return [*self._options("ssh"), "-T", self.login, remote_command]

    def scp(self, local: Path, remote_path: str) -> list[str]:
        # Not -q: scp passes it on to ssh, which then keeps quiet about why it failed. Its
        # progress meter needs a terminal, and stdout is a pipe.
        return [*self._options("scp"), str(local), f"{self.scp_login}:{remote_path}"]


def parse(text: str, config=None) -> Destination:
    """`USER@HOST[:PORT]` (user optional, an IPv6 address in brackets) as a Destination."""
    where = f"--ssh {text!r}"
    m = _DEST.fullmatch(text or "")
    if m is None:
        if text and text.count(":") >= 2 and "[" not in text:
            raise UsageError(f"{where}: put an IPv6 address in brackets, e.g. pi@[{text.split('@')[-1]}]")
        raise UsageError(f"{where} is not USER@HOST[:PORT]")
    user, host, port = m.group("user"), m.group("host"), m.group("port")
    if user is not None and not _USER.fullmatch(user):
        raise UsageError(f"{where}: {user!r} is not a user name")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"{where}: {host} is not an IPv6 address") from None
        host = host[1:-1]
    elif not _NAME.fullmatch(host):
        raise UsageError(f"{where} is not USER@HOST[:PORT] (a host name or address, no spaces, "
                         "not starting with '-')")
    if port is not None and not 1 <= int(port) <= 65535:
        raise UsageError(f"{where}: port {port} is not in 1..65535")
    if config is not None:
        config = Path(config)
        if not config.is_file():
            raise UsageError(f"--ssh-config {config}: no such file")
    return Destination(text, user, host, int(port) if port is not None else None, config)


def destination(text: str | None, config, board) -> Destination | None:
    """The parsed `--ssh` for `board` (None without --ssh); refuses boards that do not run Linux."""
    if text is None:
        if config is not None:
            raise UsageError("--ssh-config is only used with --ssh USER@HOST")
        return None
    if board.runtime not in RUNTIMES:
        raise UsageError(f"board {board.id} is not a Linux board: --ssh is for the Raspberry Pi Linux boards "
                         "(and `host`, a machine like this one)")
    return parse(text, config)


# ------------------------------------------------------------------ the program on the board
def remote_name(board_id: str, image: Path) -> str:
    digest = hashlib.sha256(Path(image).read_bytes()).hexdigest()[:16]
    return f"hk_firmware-{board_id}-{digest}"


def check_command(dest: Destination, name: str) -> list[str]:
    """Exit 0 when NAME is there (whole: copies are renamed into place), 1 when it is not."""
    return dest.ssh(f"test -x {shlex.quote(name)}")


def copy_commands(dest: Destination, image: Path, name: str) -> list[list[str]]:
    part = shlex.quote(name + ".part")
    return [dest.scp(Path(image).resolve(), name + ".part"),
            dest.ssh(f"chmod 755 {part} && mv -f {part} {shlex.quote(name)}")]


def start_command(dest: Destination, name: str) -> list[str]:
    return dest.ssh(f"./{name}")


def plan(dest: Destination, board_id: str, image: Path, copy: str = "missing") -> list[list[str]]:
    """Every command install + start run, in order, when the program must be copied (`--dry-run`).
    copy: "missing" (check first, as `hilkit run`) or "always" (as `hilkit flash`)."""
    name = remote_name(board_id, image)
    cmds = [check_command(dest, name)] if copy == "missing" else []
    return cmds + copy_commands(dest, image, name) + [start_command(dest, name)]


def say_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SshError(f"{tool} not found: install openssh-client (`make setup` does)")
    return path


# ssh's complaints (whichever line says them: scp adds its own "Connection closed" after) and
# what to do about each.
_HINTS = (
    (("Permission denied", "Too many authentication failures"),
     ("hilkit never asks for a password: put your public key in the board's ~/.ssh/authorized_keys "
      "(ssh-copy-id), or name the key in --ssh-config")),
    (("Host key verification failed", "HOST IDENTIFICATION HAS CHANGED"),
     "the board's host key is not in known_hosts: ssh to it once by hand, or give one with --ssh-config"),
    (("Connection refused", "timed out", "No route", "resolve", "Network is unreachable", "Connection reset"),
     "is the board on and its ssh server running? check the address and port"),
)


def _why(stderr: str, rc: int) -> str:
    """The line of ssh's stderr that says why it failed, with what to do about it."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    for keys, hint in _HINTS:
        for line in lines:
            if any(k in line for k in keys):
                return f"{line} ({hint})"
    return lines[-1] if lines else f"exit status {rc}"


def run_command(dest: Destination, argv: list[str], say, ok=(0,), timeout: float = COMMAND_TIMEOUT_S) -> int:
    """Print `$ argv`, run it (no stdin, bounded in time); its exit status if in `ok`, else SshError."""
    say("$ " + shlex.join(argv))
    try:
        p = subprocess.run([which(argv[0]), *argv[1:]], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=timeout, check=False, preexec_fn=die_with_parent())
    except subprocess.TimeoutExpired:
        raise SshError(f"{argv[0]} to {dest} did not finish within {timeout:g} s and was stopped "
                       "(is the board still reachable?)") from None
    except OSError as e:
        raise SshError(f"cannot run {argv[0]}: {e}") from None
    if p.returncode in ok:
        return p.returncode
    raise SshError(f"{argv[0]} to {dest} failed: {_why(p.stderr, p.returncode)}")


def install(dest: Destination, board_id: str, image: Path, copy: str = "missing", say=say_stderr) -> str:
    """Put the image on the board (copy "missing": only if it is not there; "always"); its name there."""
    name = remote_name(board_id, image)
    if copy == "missing" and run_command(dest, check_command(dest, name), say, ok=(0, 1)) == 0:
        return name
    for argv in copy_commands(dest, image, name):
        run_command(dest, argv, say)
    return name


class SshLink(PipeLink):
    """The link to a program started with `ssh -T`: a PipeLink whose errors name the board and say
    in one line why the program is gone (ssh's complaint, or the program's exit status and last
    stderr line)."""

    def __init__(self, popen: subprocess.Popen, dest: Destination, name: str, **kwargs):
        super().__init__(popen, **kwargs)
        self.dest, self.name = dest, name

    def _gone(self, what: str) -> LinkClosed:
        try:   # stdout ended: ssh's exit status and last words follow within moments
            self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            pass
        for t in self._threads[1:]:
            t.join(1.0)
        rc, text = self.proc.poll(), self.stderr_text
        if rc == 255 and any(k in text for k in ("ssh:", "Permission denied", "Host key verification")):
            return LinkClosed(f"ssh to {self.dest} failed: {_why(text, rc)}")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        status = "is still running" if rc is None else f"ended (exit status {rc})"
        msg = f"{what}: ./{self.name} on {self.dest} {status}"
        if lines:
            msg += f": {lines[-1]}"
        return LinkClosed(msg + " (is it a hilkit firmware for this board?)")


def spawn(dest: Destination, name: str, say=say_stderr) -> SshLink:
    """Start ./NAME on the board with `ssh -T`: its stdin/stdout are the returned link."""
    argv = start_command(dest, name)
    say("$ " + shlex.join(argv))
    try:
        proc = subprocess.Popen([which("ssh"), *argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0, preexec_fn=die_with_parent())
    except OSError as e:
        raise SshError(f"cannot run ssh: {e}") from None
    return SshLink(proc, dest, name)
