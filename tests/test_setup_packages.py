"""Setup installs every Debian package the builds read.

For each board, a real firmware build is made with the board's own toolchain; the files it reads
are collected (every header of every object from Ninja's dependency log, every file the linker
opens from `-Wl,--trace`, the specs files, the compiler's own programs, the QEMU binary that runs
the board) and mapped to their owning Debian packages with `dpkg -S`. Each owner must be in
scripts/debian-packages.txt or in the Depends/Pre-Depends closure of that list without Recommends,
because setup installs with --no-install-recommends. This holds on any machine, including one where
somebody installed the missing package by hand: the check is against the list, not the disk.
The programs the tests run besides the builds (sshd, ssh, scp, ssh-keygen and sftp-server for the
real ssh server of tests/test_ssh.py) are mapped to their packages and checked the same way.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from hilkit.codegen.build import TOOLCHAIN_COMPILERS
from hilkit.host import boards
from helpers import ROOT
from test_ssh import RUNTIME_TOOLS, find_program

PACKAGE_LIST = ROOT / "scripts" / "debian-packages.txt"

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("apt-cache") is None,
                                reason="not a Debian/Ubuntu machine: no dpkg/apt-cache to map files to packages")


def listed_packages(path: Path = PACKAGE_LIST) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@lru_cache(maxsize=None)
def install_closure(packages: tuple[str, ...]) -> frozenset[str]:
    """Every package apt installs for `packages` with --no-install-recommends (Depends, Pre-Depends)."""
    p = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", *packages],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    names = set(packages)
    for line in p.stdout.splitlines():
        line = line.strip()
        m = re.match(r"^(?:\|?(?:Pre)?Depends:\s*)?<?([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?>?$", line)
        if m:
            names.add(m.group(1))
    return frozenset(names)


def owners(paths) -> dict[str, str]:
    """{package: one file it owns} for the files dpkg knows (files of this checkout, the venv or /tmp
    belong to no package and are left out)."""
    found: dict[str, str] = {}
    for path in sorted(set(paths)):
        cands = {os.path.normpath(path), os.path.realpath(path)}
        # usrmerge: dpkg may have recorded /lib/... for a file now reached as /usr/lib/... (and back)
        for c in list(cands):
            if c.startswith("/usr/"):
                cands.add(c[4:])
            elif c.startswith(("/lib", "/bin", "/sbin")):
                cands.add("/usr" + c)
        for c in sorted(cands):
            p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if p.returncode == 0:
                for line in p.stdout.splitlines():
                    if ": " in line and "diversion" not in line:
                        for pkg in line.split(": ", 1)[0].split(", "):
                            found.setdefault(pkg.split(":")[0], path)
                break
    return found


def _compiler(board) -> str:
    return "gcc" if board.toolchain == "host-gcc" else TOOLCHAIN_COMPILERS[board.toolchain]


def build_reads(board, build_dir: Path) -> list[str]:
    """The files outside the project that a finished firmware build in build_dir read."""
    ninja = shutil.which("ninja") or str(Path(os.sys.executable).parent / "ninja")
    deps = subprocess.run([ninja, "-C", str(build_dir), "-t", "deps"], capture_output=True, text=True, check=True)
    files = [line.strip() for line in deps.stdout.splitlines() if line.startswith("    ")]
    commands = subprocess.run([ninja, "-C", str(build_dir), "-t", "commands", "hk_firmware"],
                              capture_output=True, text=True, check=True).stdout.strip().splitlines()
    link = next(part for part in commands[-1].split(" && ") if " -o hk_firmware" in part)
    trace = subprocess.run(link + " -Wl,--trace", shell=True, cwd=build_dir, capture_output=True, text=True)
    assert trace.returncode == 0, f"relinking {board.id} with --trace failed:\n{trace.stdout}\n{trace.stderr}"
    for line in trace.stdout.splitlines():
        m = re.search(r"(/[^\s()]+)", line)
        if m and not line.startswith("CMakeFiles"):
            files.append(m.group(1))
    cc = shlex.split(link)[0]
    for spec in re.findall(r"--specs=(\S+)", link):
        files.append(subprocess.run([cc, f"-print-file-name={spec}"], capture_output=True, text=True).stdout.strip())
    for prog in ("cc1", "as", "collect2", "ld"):
        files.append(subprocess.run([cc, f"-print-prog-name={prog}"], capture_output=True, text=True).stdout.strip())
    files.append(shutil.which(cc) or cc)
    if board.qemu is not None:  # the emulator that runs the board's image
        files.append(shutil.which(board.qemu.binary) or board.qemu.binary)
    project = (str(ROOT), str(build_dir), "/tmp", os.sys.prefix)
    return [f for f in files if f.startswith("/") and not f.startswith(project) and os.path.exists(f)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from hilkit.models import recipes
    path = tmp_path_factory.mktemp("setup") / "mlp.npz"
    recipes.RECIPES["digits-mlp"](path, epochs=1)
    return path


@pytest.mark.parametrize("board_id", boards.board_ids())
def test_setup_installs_every_package_the_build_reads(board_id, tiny_model, tmp_path):
    from hilkit.codegen.build import BuildError
    from hilkit.host.compile import compile_model

    board = boards.get_board(board_id)
    try:
        res = compile_model(tiny_model, board.id, tmp_path / "fw")
    except BuildError as e:
        lines = str(e).splitlines()
        first = next((line for line in lines if "error" in line.lower()), lines[-1])
        pytest.fail(f"the {board.id} firmware build fails on this machine, so setup misses a package: {first}")
    reads = build_reads(board, res.out_dir / "build" / board.id)
    assert len(reads) >= 5, reads  # headers, crt files, libraries, compiler programs
    closure = install_closure(tuple(listed_packages()))
    missing = {pkg: f for pkg, f in owners(reads).items() if pkg not in closure}
    assert not missing, (
        f"the {board.id} build ({_compiler(board)}) reads files of packages that setup does not install "
        f"(not in {PACKAGE_LIST.relative_to(ROOT)} nor in its Depends closure without Recommends): "
        + "; ".join(f"{pkg} ({f})" for pkg, f in sorted(missing.items())))


@pytest.mark.parametrize("tool", RUNTIME_TOOLS)
def test_setup_installs_the_tools_the_tests_run(tool):
    path = find_program(tool)
    assert path is not None, (f"{tool} is not installed, and tests/test_ssh.py runs it: `make system-packages` "
                              f"installs what {PACKAGE_LIST.relative_to(ROOT)} lists")
    found = owners([path])
    assert found, f"{path} belongs to no Debian package"
    closure = install_closure(tuple(listed_packages()))
    assert set(found) & closure, (
        f"{tool} ({path}) comes from {', '.join(sorted(found))}, which setup does not install "
        f"(not in {PACKAGE_LIST.relative_to(ROOT)} nor in its Depends closure without Recommends)")


def test_package_list_is_what_setup_installs():
    script = (ROOT / "scripts" / "setup-system.sh").read_text()
    assert "debian-packages.txt" in script and "--no-install-recommends" in script
    pkgs = listed_packages()
    assert len(pkgs) == len(set(pkgs))
    assert {"gcc-aarch64-linux-gnu", "gcc-arm-none-eabi", "qemu-system-arm", "openssh-server",
            "openssh-client"} <= set(pkgs)
