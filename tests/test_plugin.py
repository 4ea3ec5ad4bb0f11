"""The pytest plugin (hilkit.host.pytest_plugin), used the way board regression suites use it:
digits models on every `--hil-board` board (default mps2-an386 under QEMU), compared with the
numpy reference; and the plugin's own machinery (options, markers, shared builds) checked in an
inner pytest run.

    pytest tests/test_plugin.py --hil-board mps2-an386 --hil-board rpi4 -n 2
    pytest tests/test_plugin.py --hil-board pico --hil-port pico=/dev/ttyACM0 --hil-probe pyocd
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

# Imported here, before any in-process inner run, so that pytester's module snapshot keeps one
# copy of them (an inner run's fresh import would give a second Board class).
from hilkit.host import boards, compile, flash, ports, protocol, runner  # noqa: E402,F401

pytest_plugins = ["pytester"]

MODELS = ["digits-mlp", "digits-cnn"]
SAMPLES = 24


@pytest.fixture(scope="session", params=MODELS)
def hil_model(request, hil_cache):
    """A digits model, trained once for the whole run (shared by xdist workers). Accuracy does
    not matter here, agreement with the reference does: two epochs are enough."""
    from hilkit.models import recipes
    name = request.param
    return hil_cache.get(f"model-{name}-e2", lambda d: recipes.RECIPES[name](d / f"{name}.npz", epochs=2)) \
        / f"{name}.npz"


@pytest.fixture(scope="session")
def digits_test():
    from hilkit.models import data
    _, _, x, y = data.digits_split()
    return x[:SAMPLES].astype(np.float32), y[:SAMPLES]


def _reference(compiled, x):
    from hilkit.models import modelfile, reference
    m = modelfile.load(compiled / "model.npz")
    return np.asarray(reference.forward(m, x.reshape((-1,) + tuple(m.shapes["input"]))), dtype=np.float32)


# ------------------------------------------------------------------ the regression suite
def test_board_runs_the_compiled_model(hil_client, hil_board):
    info = hil_client.info()
    assert info["board"] == hil_board.id
    assert info["model_hash"] == hil_client.manifest["model_hash"]
    assert (info["n_in"], info["n_out"]) == (64, 10)


def test_outputs_match_the_reference(hil_client, digits_test):
    x, _ = digits_test
    out = np.stack([hil_client.infer(xi).outputs for xi in x])
    ref = _reference(hil_client.compiled, x)
    assert out.shape == ref.shape == (SAMPLES, 10)
    assert np.abs(out - ref).max() < 1e-5
    assert (out.argmax(1) == ref.argmax(1)).all()
    assert np.allclose(out.sum(1), 1.0, atol=1e-5)        # softmax probabilities


def test_bench_repeats_the_last_input(hil_client, digits_test):
    x, _ = digits_test
    hil_client.infer(x[0])
    counts = hil_client.instruction_counts()
    r = hil_client.bench(3)
    assert r["reps"] == 3
    if hil_client.kind in ("qemu-system", "qemu-user"):
        # Exact and deterministic: the same input costs the same instructions every time (BENCH's
        # loop differs from INFER's by a few instructions of call glue between the markers).
        bench = hil_client.instruction_counts()
        assert len(bench) == 3 and len(set(bench)) == 1 and abs(bench[0] - counts[0]) <= 8 and counts[0] > 100
    if hil_client.kind in ("host", "serial"):
        assert r["cycles"] > 0


@pytest.mark.qemu
def test_instruction_counts_are_per_inference(hil_client, digits_test):
    if hil_client.kind not in ("qemu-system", "qemu-user"):
        pytest.skip(f"{hil_client.kind}: no instruction counts")
    x, _ = digits_test
    for xi in x[:3]:
        hil_client.infer(xi)
    counts = hil_client.instruction_counts()
    assert len(counts) == 3 and min(counts) > 100


@pytest.mark.hardware
def test_cycle_counter_runs_on_hardware(hil_client, digits_test):
    r = hil_client.infer(digits_test[0][0])
    assert r.cycles > 0


# ------------------------------------------------------------------ the plugin itself
INNER = """
import pytest

def test_board(hil_board, hil_port):
    assert hil_board.id in ("host", "rpi4")
    assert hil_port == ("/dev/ttyFAKE0" if hil_board.id == "rpi4" else None)

@pytest.mark.hardware
def test_hw(hil_board):
    pass

@pytest.mark.qemu
def test_q(hil_board):
    pass

@pytest.mark.hardware
def test_hw_no_board():
    pass

def test_client_needs_a_model(hil_client):
    pass
"""


def test_options_markers_and_skips(pytester):
    pytester.makepyfile(test_inner=INNER)
    r = pytester.runpytest_inprocess("--hil-board", "host", "--hil-board", "rpi4", "--hil-port",
                                     "rpi4=/dev/ttyFAKE0", "-rs", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=5, skipped=4)   # test_client_needs_a_model runs per board
    passed = {x.nodeid.split("::")[1] for x in r.reprec.getreports("pytest_runtest_logreport")
              if x.passed and x.when == "call"}
    assert passed == {"test_board[host]", "test_board[rpi4]", "test_hw[rpi4]", "test_q[host]", "test_hw_no_board"}
    out = r.stdout.str()
    assert "hardware test: no --hil-port for board host" in out
    assert "QEMU test: board rpi4 is real hardware on /dev/ttyFAKE0" in out
    assert "override the `hil_model` fixture" in out
    assert "hilkit: boards host (QEMU/native), rpi4 (port /dev/ttyFAKE0)" in out


def test_default_board_and_bad_port_option(pytester):
    pytester.makepyfile(test_inner="def test_b(hil_board):\n    assert hil_board.id == 'mps2-an386'\n")
    r = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    r.assert_outcomes(passed=1)
    r = pytester.runpytest_inprocess("--hil-board", "host", "--hil-board", "rpi4", "--hil-port", "/dev/ttyX",
                                     "-p", "no:cacheprovider")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "--hil-port /dev/ttyX: with several --hil-board, say which board: --hil-port BOARD=/dev/ttyX" \
        in r.stderr.str()


def test_shared_builds_are_made_once(tmp_path):
    """What xdist workers rely on: concurrent gets of one key make it once, the rest wait."""
    from hilkit.host.pytest_plugin import BuildCache
    made = []

    def make(d):
        made.append(d)
        time.sleep(0.2)
        (d / "x").write_text("built")

    cache = BuildCache(tmp_path)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("model a/board", make))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(set(got)) == 1 and (got[0] / "x").read_text() == "built"


HW_INNER = """
import json
import numpy as np
import pytest

@pytest.mark.hardware
def test_on_the_port(hil_deploy, hil_board):
    c = hil_deploy({compiled!r})
    assert c.kind == "serial" and hil_board.id == "host"
    assert c.info()["model_hash"] == "0123456789abcdef"
    r = c.infer(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    assert r.outputs.tolist() == [5.0, 11.0, 2.5]
    assert c.instruction_counts() is None

@pytest.mark.qemu
def test_not_on_hardware(hil_board):
    pass
"""


def test_real_port_path(pytester, tmp_path):
    """--hil-port: the board is reached over a serial port (here a pty whose far end runs the host
    build of the firmware, as a USB-serial board would), held under a lock, its model checked."""
    import json
    import os
    import subprocess
    import sys
    import tty
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
    import protobuild as pb

    compiled = tmp_path / "compiled"
    compiled.mkdir()
    fw = pb.build_firmware(compiled / "hk_firmware")
    (compiled / "hilkit.json").write_text(json.dumps({"model": "proto-test", "model_hash": "0123456789abcdef",
                                                      "board": "host", "exp": "libm", "image": "hk_firmware"}))
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([str(fw)], stdin=master, stdout=master, stderr=subprocess.DEVNULL)
    try:
        pytester.makepyfile(test_inner=HW_INNER.format(compiled=str(compiled)))
        r = pytester.runpytest_inprocess("--hil-board", "host", "--hil-port", os.ttyname(slave), "-rs",
                                         "-p", "no:cacheprovider")
        r.assert_outcomes(passed=1, skipped=1)
        assert f"QEMU test: board host is real hardware on {os.ttyname(slave)}" in r.stdout.str()
    finally:
        proc.kill()
        proc.wait()
        os.close(slave)
        os.close(master)
