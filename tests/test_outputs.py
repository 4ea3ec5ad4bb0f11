"""Outputs are checked before any work and written under a temporary name: a bad path is exit 2 and
one line before anything runs, a failed or killed command leaves nothing that looks finished, and
a build's children die with hilkit."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilkit.core.errors import UsageError
from hilkit.core.files import atomic_dir, check_output_dir, check_output_file, write_atomic

HILKIT = str(Path(sys.executable).parent / "hilkit")


def hilkit(*args, cwd, env=None, timeout=300):
    return subprocess.run([HILKIT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)


def one_error_line(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hilkit: error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from hilkit.models import recipes
    path = tmp_path_factory.mktemp("outputs") / "mlp.npz"
    recipes.RECIPES["digits-mlp"](path, epochs=1)
    return path


# ---------------------------------------------------------------- the checks themselves
def test_check_output_file_and_dir(tmp_path):
    assert check_output_file(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        check_output_file(tmp_path / "f" / "r.json")
    with pytest.raises(UsageError, match="it is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(UsageError, match="not writable"):
        check_output_file("/proc/hilkit.json")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "f")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hilkit-probe")]


def test_atomic_dir_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as d:
        (d / "a").write_text("1")
        assert not final.exists()
    assert (final / "a").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as d:
            (d / "b").write_text("2")
            raise RuntimeError("boom")
    assert sorted(p.name for p in final.iterdir()) == ["a"]  # the old folder is untouched
    with atomic_dir(final) as d:
        (d / "c").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or old folders left


def test_write_atomic(tmp_path):
    p = write_atomic(tmp_path / "x" / "y.json", '{"a": 1}')
    assert json.loads(p.read_text()) == {"a": 1}
    assert sorted(q.name for q in p.parent.iterdir()) == ["y.json"]


# ---------------------------------------------------------------- through the CLI
def test_unwritable_json_is_refused_before_the_run(model, tmp_path):
    t0 = time.monotonic()
    p = hilkit("run", model, "--board", "mps2-an386", "--json", "/proc/hilkit-r.json", cwd=tmp_path)
    line = one_error_line(p)
    assert "/proc/hilkit-r.json" in line and "not writable" in line
    assert p.stdout == ""  # no table: nothing ran
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - t0 < 20


def test_unwritable_work_folder_is_refused_before_the_run(model):
    p = hilkit("run", model, "--board", "mps2-an386", "--limit", 2, cwd="/proc")
    line = one_error_line(p)
    assert "work folder out/run" in line and "/proc" in line


def test_output_under_a_file_is_refused(model, tmp_path):
    (tmp_path / "afile").write_text("")
    line = one_error_line(hilkit("compile", model, "--board", "host", "-o", tmp_path / "afile" / "c", cwd=tmp_path))
    assert "afile" in line and "is not a folder" in line
    line = one_error_line(hilkit("train", "digits-mlp", "-o", tmp_path / "afile" / "m.npz", cwd=tmp_path))
    assert "afile/m.npz" in line


def test_missing_toolchain_leaves_nothing(model, tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # the venv only: no cross compiler
    line = one_error_line(hilkit("compile", model, "--board", "mps2-an386", "-o", tmp_path / "outc", cwd=tmp_path,
                                 env=env))
    assert "arm-none-eabi-gcc not found" in line and "make setup" in line
    line = one_error_line(hilkit("run", model, "--board", "rpi4", "--limit", 2, cwd=tmp_path, env=env))
    assert "aarch64-linux-gnu-gcc not found" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # not even a hidden temporary folder


def test_compile_into_a_foreign_folder_is_refused(model, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    line = one_error_line(hilkit("compile", model, "--board", "host", "-o", mine, cwd=tmp_path))
    assert "was not made by `hilkit compile`" in line
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_compile_replaces_its_own_folder_and_a_moved_folder_rebuilds(model, tmp_path):
    from hilkit.codegen.build import build_firmware

    for _ in range(2):
        p = hilkit("compile", model, "--board", "host", "-o", tmp_path / "c", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == ["c"]
    man = json.loads((tmp_path / "c" / "hilkit.json").read_text())
    assert (tmp_path / "c" / man["image"]).is_file()
    # The build tree was made under a temporary name; CMake must not refuse it afterwards.
    shutil.move(tmp_path / "c", tmp_path / "moved")
    assert build_firmware(tmp_path / "moved", "host").is_file()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(f"{d.name}: {cmd[:200]}")
    return found


def test_killing_hilkit_during_a_build_kills_the_build(model, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([HILKIT, "compile", str(model), "--board", "mps2-an386", "-o", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("cc1" in c or "cmake" in c or "ninja" in c
                                                  for c in _processes_mentioning(".killed.")):
        assert proc.poll() is None, "the compile finished before it could be killed"
        time.sleep(0.02)
    assert _processes_mentioning(".killed."), "never saw the build start"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _processes_mentioning(".killed.") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(".killed.") == []
    assert not out.exists()  # only a hidden temporary folder can remain: nothing looks finished
