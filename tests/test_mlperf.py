"""MLPerf Tiny mode: the whole EEMBC command sequence answered line for line (host board over a
pipe), results printed exactly (every float32 round-trips), error replies, and under QEMU on
mps2-an386 `infer 10 1%` giving the same result vector as the framed binary protocol."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hilkit.core.version import VERSION
from hilkit.host import mlperf as M
from hilkit.host import runner

sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
import protobuild as pb  # noqa: E402

PROTO_MODEL = pb.MODEL


@pytest.fixture(scope="module")
def host_image(tmp_path_factory):
    return M.build_mlperf_firmware(PROTO_MODEL, "host", tmp_path_factory.mktemp("mlperf-host"))


@pytest.fixture
def dut(host_image):
    with runner.start("host", host_image) as target:
        client = M.MlperfClient(target.link, timeout=10.0)
        yield client, client.read_until_ready()


def test_full_command_sequence(dut):
    c, banner = dut
    assert banner[0] == "m-timestamp-mode-performance" and banner[2] == "m-init-done"
    assert banner[1].startswith("m-lap-us-") and len(banner) == 3
    assert c.command("name") == ["m-name-dut-[hilkit]"]
    assert c.command("profile") == ["m-profile-[hilkit 0.1.0]", "m-model-[proto-test-0123456789abcdef]"]
    x = np.array([1.5, -2.25, 3.0, 0.125], dtype=np.float32)
    data = x.astype("<f4").tobytes()
    assert c.command("db load 16") == ["m-[Expecting 16 bytes]"]
    assert c.command("db " + data[:10].hex()) == []
    assert c.command("db " + data[10:].hex().upper()) == ["m-load-done"]
    hx = data.hex()
    assert c.command("db print") == ["m-buffer-" + "-".join(hx[i:i + 2] for i in range(0, 16, 2)),
                                     "m-buffer-" + "-".join(hx[i:i + 2] for i in range(16, 32, 2))]
    lines = c.command("infer 10 1")
    assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-10"]
    assert lines[3].startswith("m-lap-us-") and lines[4].startswith("m-lap-us-")
    assert int(lines[4][9:]) >= int(lines[3][9:])
    ref = pb.model_reference(x)
    assert lines[5:] == ["m-infer-done", f"m-results-[{','.join(f'{float(v):.9g}' for v in ref)}]"]
    assert M.parse_results(lines[6]).tobytes() == ref.tobytes()
    assert c.results().tobytes() == ref.tobytes()
    assert c.command("timestamp")[0].startswith("m-lap-us-")


def test_results_are_exact_for_every_float32(dut):
    """Each output is printed like C's %.9g: the value v and -v and v/4 of random float32 bit
    patterns (normal, subnormal, huge, tiny) come back bit for bit."""
    c, _ = dut
    rng = np.random.default_rng(12)
    bits = rng.integers(0, 0xFF000000, size=60, dtype=np.uint64).astype(np.uint32)
    bits = np.concatenate([bits, np.array([0, 1, 0x7FFFFF, 0x800000, 0x7F7FFFFF, 0x3F800000, 0x3DCCCCCD,
                                           0x4B800000, 0x4CBEBC20, 0x38D1B717, 0x80000000], dtype=np.uint32)])
    for b in bits:
        v = np.array([b], dtype=np.uint32).view(np.float32)[0]
        if not np.isfinite(v):
            continue
        x = np.array([v, 0, 0, 0], dtype=np.float32)
        c.load(x)
        r = c.infer(1, 0)
        ref = pb.model_reference(x)
        assert r.lines[-1] == f"m-results-[{','.join(f'{float(t):.9g}' for t in ref)}]"
        assert r.results.tobytes() == ref.tobytes()


@pytest.mark.parametrize("cmd, error", [
    ("bogus", "e-[Unknown command: bogus]"),
    ("infer 0", "e-[Inference iterations must be >0]"),
    ("infer 1 x", "e-[Inference warmup must be >=0]"),
    ("db", "e-[Command 'db' requires a subcommand]"),
    ("db load 0", "e-[Command 'db load' requires the # of bytes, > 0]"),
    ("db load 17", "e-[Supplied buffer size 17 exceeds maximum of 16]"),
    ("db abc", "e-[Insufficent number of hex digits]"),
    ("results", "e-[No inference has run]"),
    ("infer 1 0", "e-[Input db has 0 bytes, expected 16 (n_in float32)]"),
])
def test_errors_then_ready(dut, cmd, error):
    c, _ = dut
    assert c.command(cmd, check=False) == [error]
    with pytest.raises(M.MlperfError, match=r"device error e-\["):
        c.command(cmd)


def test_bad_input_and_long_command(dut):
    c, _ = dut
    assert c.command("db load 16") == ["m-[Expecting 16 bytes]"]
    assert c.command("db zz", check=False) == ["e-[Invalid hex digit]"]
    c.load(np.array([np.nan, 0, 0, 0], dtype=np.float32))
    assert c.command("infer 1 0", check=False) == ["e-[Input not finite (NaN or Inf)]"]
    c.load(np.array([pb.FAIL_INPUT, 0, 0, 0], dtype=np.float32))
    lines = c.command("infer 1 0", check=False)
    assert lines[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-1"] and lines[-1] == "e-[Model failed]"
    assert c.command("results", check=False) == ["e-[No inference has run]"]
    assert c.command("db " + "00" * 700, check=False) == ["e-[Command too long]"]
    assert c.name() == ("dut", "hilkit")        # still in step afterwards


# ------------------------------------------------------------------ QEMU: same vector as the binary protocol
def _qemu_ready(board_id: str) -> str | None:
    import shutil

    from hilkit.codegen import build
    from hilkit.host import boards
    b = boards.get_board(board_id)
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    return None if shutil.which(b.qemu.binary) else f"{b.qemu.binary} not installed"


@pytest.mark.qemu
@pytest.mark.skipif(_qemu_ready("mps2-an386") is not None, reason=str(_qemu_ready("mps2-an386")))
def test_mlperf_matches_binary_protocol_under_qemu(tmp_path):
    from hilkit.host.compile import compile_model
    from hilkit.host.protocol import Client
    from hilkit.models import data, recipes

    model = tmp_path / "digits-mlp.npz"
    recipes.RECIPES["digits-mlp"](model, epochs=2)
    comp = compile_model(model, "mps2-an386", tmp_path / "c")
    mimage = M.build_mlperf_firmware(tmp_path / "c", "mps2-an386")
    x_test = data.digits_split()[2][:4].astype(np.float32)

    with runner.start("mps2-an386", comp.image) as t:
        client = Client(t.link, timeout=5.0)
        info = client.info()
        binary, counts = [], []
        for x in x_test:
            binary.append(client.infer(x).outputs)
            counts += t.instruction_counts()
    with runner.start("mps2-an386", mimage) as t:
        dut = M.MlperfClient(t.link, timeout=20.0)
        assert dut.read_until_ready()[-1] == "m-init-done"
        assert dut.profile() == {"profile": f"hilkit {VERSION}", "model": f"digits-mlp-{info['model_hash']}"}
        for i, x in enumerate(x_test):
            dut.load(x)
            r = dut.infer(10, 1)
            assert r.results.tobytes() == binary[i].tobytes()            # bit for bit
            assert dut.results().tobytes() == binary[i].tobytes()
            # QEMU counted each of the 11 runs (1 warm-up + 10 timed): the same model code as the
            # binary protocol's, give or take the few instructions of call glue between the markers.
            mcounts = t.instruction_counts()
            assert len(mcounts) == 11 and len(set(mcounts[1:])) == 1
            assert all(abs(m - counts[i]) <= 8 for m in mcounts), (mcounts, counts[i])
