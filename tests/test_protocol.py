"""The framed protocol: Python vs C golden bytes, the host-built firmware over a pipe, the Client's
checks of untrusted replies, the links, and a sanitizer run over garbage input."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
import protobuild as pb  # noqa: E402

from hilkit.host import protocol as P  # noqa: E402
from hilkit.host.link import Link, LinkClosed, LinkError, PipeLink, open_url  # noqa: E402

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    exe = pb.build_golden(tmp_path_factory.mktemp("golden") / "proto_golden")

    def run(lines: list[str]) -> list[str]:
        p = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        out = p.stdout.splitlines()
        assert len(out) == len(lines)
        return out
    return run


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    return pb.build_firmware(tmp_path_factory.mktemp("fw") / "hk_fw_host")


@pytest.fixture
def link(firmware):
    lk = PipeLink.spawn([firmware])
    yield lk
    lk.close()
    assert lk.returncode == 0, lk.stderr_text


def h(b: bytes) -> str:
    return b.hex() if b else "-"


# ------------------------------------------------------------------ COBS / CRC / frames in Python

COBS_CASES = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x00\x00\x00", b"\x01\x01\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),                     # 254 non-zero
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),       # 255 non-zero
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
    (b"\x01" * 508, b"\xff" + b"\x01" * 254 + b"\xff" + b"\x01" * 254),         # 2 x 254
]


@pytest.mark.parametrize("raw,enc", COBS_CASES, ids=range(len(COBS_CASES)))
def test_cobs_known_encodings(raw, enc):
    assert P.cobs_encode(raw) == enc
    assert P.cobs_decode(enc) == raw


def test_cobs_roundtrip_random():
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(0, 1200))
        raw = rng.integers(0, 256, n, dtype=np.uint8)
        raw[rng.random(n) < rng.random()] = 0
        raw = raw.tobytes()
        enc = P.cobs_encode(raw)
        assert 0 not in enc
        assert len(enc) <= n + n // 254 + 1
        assert P.cobs_decode(enc) == raw


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x05\x11\x22", b"\x03\x11\x00", b"\x02\x11\x00\x01"])
def test_cobs_decode_rejects(bad):
    with pytest.raises(P.FrameError):
        P.cobs_decode(bad)


def test_crc32_check_value():
    assert P.crc32(b"123456789") == 0xCBF43926


def test_frame_layout_by_hand():
    # INFO request, seq 5: body 01 05 | crc32(01 05) little-endian
    crc = zlib.crc32(b"\x01\x05")
    body = b"\x01\x05" + struct.pack("<I", crc)
    assert P.encode_frame(P.MsgType.INFO, 5) == P.cobs_encode(body) + b"\x00"
    f = P.decode_frame(P.encode_frame(0x82, 0xFE, b"\x00\x01\x02")[:-1])
    assert (f.type, f.seq, f.payload) == (0x82, 0xFE, b"\x00\x01\x02")


def test_frame_rejects():
    good = P.encode_frame(2, 9, b"abc")[:-1]
    body = bytearray(P.cobs_decode(good))
    body[3] ^= 0x10
    with pytest.raises(P.FrameError, match="CRC"):
        P.decode_frame(P.cobs_encode(bytes(body)))
    with pytest.raises(P.FrameError, match="shorter"):
        P.decode_frame(P.cobs_encode(b"\x01\x02\x03\x04\x05"))
    big = b"\x02\x01" + b"\x55" * (P.MAX_PAYLOAD + 1)
    with pytest.raises(P.FrameError, match="exceeds"):
        P.decode_frame(P.cobs_encode(big + struct.pack("<I", zlib.crc32(big))))
    with pytest.raises(ValueError):
        P.encode_frame(2, 1, b"\x00" * (P.MAX_PAYLOAD + 1))
    assert len(P.encode_frame(2, 1, b"\x00" * P.MAX_PAYLOAD)) <= P.MAX_ENCODED + 1


def test_splitter_bounds_and_resync():
    sp = P.FrameSplitter()
    a, b = P.encode_frame(1, 1), P.encode_frame(1, 2)
    assert sp.feed(b"\x00\x00" + a[:3]) == []
    assert sp.feed(a[3:] + b) == [a[:-1], b[:-1]]
    # a run longer than any frame is dropped whole, then framing resumes at the next 0x00
    assert sp.feed(b"\x55" * (P.MAX_ENCODED + 10)) == []
    assert sp.feed(b"\x55" * 5000) == []
    assert sp.feed(b"\x00" + a) == [None, a[:-1]]


# ------------------------------------------------------------------ golden bytes: C vs Python


def _golden_inputs():
    rng = np.random.default_rng(7)
    cases = [raw for raw, _ in COBS_CASES]
    for n in (0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 1000, 2054, 2100):
        cases.append(bytes(rng.integers(1, 256, n, dtype=np.uint8)))
        cases.append(bytes(n))
    for _ in range(200):
        n = int(rng.integers(0, 700))
        raw = rng.integers(0, 256, n, dtype=np.uint8)
        raw[rng.random(n) < rng.random() * 0.3] = 0
        cases.append(raw.tobytes())
    return cases


def test_golden_cobs_and_crc(golden):
    cases = _golden_inputs()
    out = golden([f"E {h(c)}" for c in cases] + [f"C {h(c)}" for c in cases])
    for c, line in zip(cases, out[:len(cases)]):
        assert line == h(P.cobs_encode(c)), c.hex()
    for c, line in zip(cases, out[len(cases):]):
        assert line == f"{P.crc32(c):08x}"


def test_golden_cobs_decode_agrees_on_any_input(golden):
    """C and Python accept and reject the same byte strings, and decode them identically."""
    rng = np.random.default_rng(11)
    cases = [P.cobs_encode(c) for c in _golden_inputs()]
    cases += [b"\x05\x11\x22", b"\x03\x11\x00", b"\x02\x11\x00\x01", b"\xff" + b"\x01" * 254 + b"\x01",
              b"\x02\x41\x01", b"\x01"]
    for _ in range(2000):
        n = int(rng.integers(1, 40))
        raw = rng.integers(0, 256, n, dtype=np.uint8)
        raw[rng.random(n) < 0.05] = 0
        cases.append(raw.tobytes())
    out = golden([f"D {h(c)}" for c in cases])
    accepted = 0
    for c, line in zip(cases, out):
        try:
            want = h(P.cobs_decode(c))
            accepted += 1
        except P.FrameError:
            want = None
        if want is None:
            assert line.startswith("ERR"), c.hex()
        else:
            assert line == want, c.hex()
    assert 100 < accepted < len(cases)


def test_golden_frames_both_ways(golden):
    rng = np.random.default_rng(3)
    msgs = [(1, 0, b""), (0x81, 0, b""), (2, 1, bytes(16)), (0x7F, 0xFF, b"\x01bad CRC"),
            (3, 254, struct.pack("<I", 1000)), (0x82, 77, bytes(range(256)) * 8)]
    for _ in range(100):
        n = int(rng.integers(0, P.MAX_PAYLOAD + 1))
        payload = rng.integers(0, 256, n, dtype=np.uint8)
        payload[rng.random(n) < 0.2] = 0
        msgs.append((int(rng.integers(0, 256)), int(rng.integers(0, 256)), payload.tobytes()))
    out = golden([f"B {t} {s} {h(p)}" for t, s, p in msgs])
    for (t, s, p), line in zip(msgs, out):
        assert line == P.encode_frame(t, s, p).hex()
    # C parses what Python built (in place, as the firmware does)
    out = golden([f"P {h(P.encode_frame(t, s, p)[:-1])}" for t, s, p in msgs])
    for (t, s, p), line in zip(msgs, out):
        crc = P.crc32(bytes((t, s)) + p)
        assert line == f"OK {t} {s} {crc:08x} {h(p)}"
    # both reject the same damaged frames
    bad = []
    for t, s, p in msgs[:40]:
        enc = bytearray(P.encode_frame(t, s, p)[:-1])
        i = int(rng.integers(0, len(enc)))
        enc[i] ^= 1 << int(rng.integers(0, 8))
        if 0 in enc:
            continue
        bad.append(bytes(enc))
    long_body = b"\x02\x01" + b"\x11" * (P.MAX_PAYLOAD + 1)
    bad.append(P.cobs_encode(long_body + struct.pack("<I", P.crc32(long_body))))
    bad.append(P.cobs_encode(b"\x01\x02\x03"))
    out = golden([f"P {h(b)}" for b in bad])
    for b, line in zip(bad, out):
        with pytest.raises(P.FrameError):
            P.decode_frame(b)
        assert line.startswith("ERR"), b.hex()


def test_golden_receiver_framing(golden):
    a, b = P.encode_frame(1, 1), P.encode_frame(2, 2, b"\x00\x01")
    streams = [
        a + b,
        b"\x00\x00" + a + b"\x00" + b,                       # empty frames are ignored
        b"\x11" * (P.MAX_ENCODED + 1) + b"\x00" + a,          # over-long: dropped, then resync
        b"\x11" * P.MAX_ENCODED + b"\x00",                    # exactly the maximum: kept
        b"\x11" * 5000 + a,                                   # garbage merges with the frame: dropped
    ]
    out = golden([f"R {h(s)}" for s in streams])
    expect = []
    for s in streams:
        sp = P.FrameSplitter()
        ev = ["X" if f is None else f"F:{h(f)}" for f in sp.feed(s)]
        expect.append(" ".join(ev) or "-")
    assert out == expect
    assert out[2].split()[0] == "X" and out[3].startswith("F:")


# ------------------------------------------------------------------ the host firmware


def exchange(lk: Link, data: bytes, timeout: float = 5.0) -> tuple[bytes, P.Frame]:
    """Send raw bytes, return the first reply frame (raw bytes with its 0x00, decoded)."""
    lk.write(data)
    sp = P.FrameSplitter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = sp.feed(lk.read(4096, deadline - time.monotonic()))
        if frames:
            assert len(frames) == 1 and frames[0] is not None
            return frames[0] + b"\x00", P.decode_frame(frames[0])
    raise AssertionError("no reply from the firmware")


def test_firmware_info(link):
    c = P.Client(link, timeout=2.0)
    info = c.info()
    assert info == {"proto": 1, "n_in": 4, "n_out": 3, "arena_bytes": 48, "in_shape": (2, 2),
                    "out_shape": (3,), "board": "host-test", "firmware": "0.1.0",
                    "model_hash": "0123456789abcdef"}


def test_firmware_infer_matches_numpy(link):
    c = P.Client(link, timeout=2.0)
    rng = np.random.default_rng(5)
    xs = [np.array([1, 2, 3, 4], np.float32), np.zeros(4, np.float32),
          np.array([-0.0, 3.4e38, -3.4e38, 1e-45], np.float32)]
    xs += [rng.normal(size=4).astype(np.float32) * 10 for _ in range(200)]
    for i, x in enumerate(xs):
        r = c.infer(x)
        assert r.outputs.dtype == np.float32 and r.outputs.shape == (3,)
        np.testing.assert_array_equal(r.outputs, pb.model_reference(x))
        assert r.extra == [i + 1, int(np.sum(x > 0))]
        assert r.cycles > 0  # clock_gettime ns on Linux
    assert c.stats.retries == 0 and c.stats.bad_frames == 0


def test_firmware_bench(link):
    c = P.Client(link, timeout=5.0)
    c.infer([1, 2, 3, 4])
    b = c.bench(500)
    assert b["reps"] == 500 and b["cycles"] > 0
    assert b["cycles_per_inference"] == b["cycles"] / 500
    assert c.bench(0) == {"reps": 0, "cycles": 0, "cycles_per_inference": 0.0}
    r = c.infer([1, 1, 1, 1])
    assert r.extra[0] == 1 + 500 + 1  # BENCH ran the model 500 times


def test_firmware_error_codes(link):
    def err(t, seq, payload):
        raw, f = exchange(link, P.encode_frame(t, seq, payload))
        assert f.type == P.MsgType.ERROR and f.seq == seq
        return P.decode_error(f.payload)

    assert err(P.MsgType.INFER, 1, bytes(12))[0] == P.ErrorCode.BAD_LENGTH
    assert err(P.MsgType.INFER, 2, bytes(17))[0] == P.ErrorCode.BAD_LENGTH
    assert err(P.MsgType.INFO, 3, b"\x00")[0] == P.ErrorCode.BAD_LENGTH
    assert err(P.MsgType.BENCH, 4, b"\x01\x00\x00")[0] == P.ErrorCode.BAD_LENGTH
    code, msg = err(0x09, 5, b"")
    assert code == P.ErrorCode.UNKNOWN_TYPE and msg == "unknown message type"
    assert err(0x81, 6, b"")[0] == P.ErrorCode.UNKNOWN_TYPE
    for bad in (np.nan, np.inf, -np.inf):
        x = np.array([1, bad, 3, 4], np.float32)
        assert err(P.MsgType.INFER, 7, x.tobytes())[0] == P.ErrorCode.NOT_FINITE
    x = np.array([pb.FAIL_INPUT, 0, 0, 0], np.float32)
    assert err(P.MsgType.INFER, 8, x.tobytes())[0] == P.ErrorCode.MODEL_FAILED

    # a bad CRC is answered with ERROR 1 and seq 0xFF
    enc = bytearray(P.encode_frame(P.MsgType.INFO, 9)[:-1])
    body = bytearray(P.cobs_decode(enc))
    body[-1] ^= 0x01
    raw, f = exchange(link, P.cobs_encode(bytes(body)) + b"\x00")
    assert (f.type, f.seq, f.payload) == (P.MsgType.ERROR, 0xFF, b"\x01bad CRC")
    # bad COBS, too short: ERROR 1; over-long: discarded undecoded, ERROR 2
    raw, f = exchange(link, b"\x05\x01\x00")
    assert (f.seq, P.decode_error(f.payload)) == (0xFF, (1, "bad frame"))
    raw, f = exchange(link, P.cobs_encode(b"\x01\x02\x03") + b"\x00")
    assert (f.seq, P.decode_error(f.payload)[0]) == (0xFF, 1)
    raw, f = exchange(link, b"\x11" * 5000 + b"\x00")
    assert (f.seq, P.decode_error(f.payload)) == (0xFF, (2, "frame too long"))
    body = b"\x02\x01" + b"\x22" * (P.MAX_PAYLOAD + 1)  # fits the receiver, decodes too long
    raw, f = exchange(link, P.cobs_encode(body + struct.pack("<I", P.crc32(body))) + b"\x00")
    assert (f.seq, P.decode_error(f.payload)) == (0xFF, (2, "frame too long"))

    # the Client turns device errors into DeviceError with the code, and the link still works
    c = P.Client(link, timeout=2.0)
    with pytest.raises(P.DeviceError, match="not finite") as ei:
        c.infer([0, 0, np.nan, 0])
    assert ei.value.code == 5
    with pytest.raises(P.DeviceError) as ei:
        c.request(0x42)
    assert ei.value.code == 3
    np.testing.assert_array_equal(c.infer([1, 2, 3, 4]).outputs, pb.model_reference([1, 2, 3, 4]))


def test_firmware_duplicate_seq_resends_without_recomputing(link):
    x = np.array([1, -2, 3, 4], np.float32)
    req = b"\x00" + P.encode_frame(P.MsgType.INFER, 10, x.tobytes())
    raw1, f1 = exchange(link, req)
    r1 = P.decode_infer(f1.payload, 3)
    assert r1.extra[0] == 1
    for _ in range(3):
        raw2, _ = exchange(link, req)
        assert raw2 == raw1  # byte-identical, cycles included
    # the next seq computes again: exactly one more call of the model
    raw3, f3 = exchange(link, P.encode_frame(P.MsgType.INFER, 11, x.tobytes()))
    assert P.decode_infer(f3.payload, 3).extra[0] == 2
    # same seq as the last request but other bytes: a new request, not a retransmission
    y = np.array([5, 6, 7, 8], np.float32)
    raw4, f4 = exchange(link, P.encode_frame(P.MsgType.INFER, 11, y.tobytes()))
    r4 = P.decode_infer(f4.payload, 3)
    assert r4.extra[0] == 3
    np.testing.assert_array_equal(r4.outputs, pb.model_reference(y))
    # errors are stored too: a repeated bad request gets the same ERROR back
    bad = P.encode_frame(P.MsgType.INFER, 12, bytes(3))
    assert exchange(link, bad)[0] == exchange(link, bad)[0]


def test_firmware_exits_0_on_link_close(firmware):
    lk = PipeLink.spawn([firmware])
    P.Client(lk, timeout=2.0).info()
    lk.close()
    assert lk.returncode == 0
    with pytest.raises(LinkClosed):
        lk.write(b"\x00")


# ------------------------------------------------------------------ Client against a scripted device


class ScriptedLink(Link):
    """An in-memory device: `handler(frame) -> bytes` answers each request frame."""

    def __init__(self, handler):
        self.handler = handler
        self.rx = bytearray()
        self.sent = []
        self._sp = P.FrameSplitter()

    def write(self, data):
        for enc in self._sp.feed(data):
            f = P.decode_frame(enc)
            self.sent.append(f)
            self.rx += self.handler(f)

    def read(self, n, timeout):
        if not self.rx:
            time.sleep(min(timeout, 0.01))
            return b""
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def reset_input(self):
        self.rx.clear()

    def close(self):
        pass


INFO = P.encode_info_reply(4, 3, 48, (2, 2), (3,), "sim", "0.1.0", "abcd")


def reply(f, payload, mtype=None, seq=None):
    return P.encode_frame(mtype if mtype is not None else f.type | 0x80, f.seq if seq is None else seq, payload)


def test_client_ignores_other_seq_and_retries_on_bad_crc():
    calls = {"n": 0}

    def dev(f):
        calls["n"] += 1
        if f.type == P.MsgType.INFO:
            return reply(f, INFO)
        good = reply(f, P.encode_infer_reply([1, 2, 3], 7, [9]))
        if calls["n"] == 2:  # first INFER: a stale reply, then a corrupted one
            corrupt = bytearray(good)
            corrupt[5] ^= 0xFF
            return reply(f, P.encode_infer_reply([6, 6, 6]), seq=(f.seq + 100) % 255) + bytes(corrupt)
        return good

    lk = ScriptedLink(dev)
    c = P.Client(lk, timeout=0.5, retries=2)
    r = c.infer([0, 0, 0, 0])
    np.testing.assert_array_equal(r.outputs, [1, 2, 3])
    assert (r.cycles, r.extra) == (7, [9])
    assert c.stats.ignored == 1 and c.stats.bad_frames == 1 and c.stats.retries == 1
    assert [f.seq for f in lk.sent] == [0, 1, 1]  # the resend keeps its seq


@pytest.mark.parametrize("payload,match", [
    (P.encode_infer_reply([1, 2]), "2 outputs"),
    (P.encode_infer_reply([1, 2, 3, 4]), "4 outputs"),
    (struct.pack("<QB", 0, 200) + bytes(12), "truncated"),
    (struct.pack("<QB", 0, 0) + bytes(13), "whole number"),
    (b"\x01\x02", "truncated"),
])
def test_client_rejects_malformed_infer_replies(payload, match):
    lk = ScriptedLink(lambda f: reply(f, INFO if f.type == 1 else payload))
    with pytest.raises(P.ProtocolError, match=match):
        P.Client(lk, timeout=0.5).infer([0, 0, 0, 0])


@pytest.mark.parametrize("payload,match", [
    (INFO[:-1], "truncated"),
    (INFO + b"\x00", "trailing"),
    (P.encode_info_reply(5, 3, 48, (2, 2), (3,), "s", "v", "h"), "inconsistent"),
    (P.encode_info_reply(4, 3, 48, (2, 2), (3,), "s", "v", "h", proto=2), "version 2"),
    (b"", "truncated"),
])
def test_client_rejects_malformed_info(payload, match):
    lk = ScriptedLink(lambda f: reply(f, payload))
    with pytest.raises(P.ProtocolError, match=match):
        P.Client(lk, timeout=0.5).info()


def test_client_rejects_wrong_reply_type():
    lk = ScriptedLink(lambda f: reply(f, INFO, mtype=0x83))
    with pytest.raises(P.ProtocolError, match="message type 0x83"):
        P.Client(lk, timeout=0.5).info()


def test_client_silent_device_raises_link_error_in_bounded_time():
    lk = ScriptedLink(lambda f: b"")
    c = P.Client(lk, timeout=0.1, retries=2)
    t = time.monotonic()
    with pytest.raises(LinkError, match="no valid reply to INFO .* after 3 attempts in 0.3 s"):
        c.info()
    assert 0.29 < time.monotonic() - t < 1.0
    assert len(lk.sent) == 3 and c.stats.timeouts == 3


def test_client_garbage_device_raises_link_error():
    lk = ScriptedLink(lambda f: b"\x13\x37" * 50 + b"\x00")
    t = time.monotonic()
    with pytest.raises(LinkError, match="CRC|COBS|shorter"):
        P.Client(lk, timeout=0.2, retries=4).info()
    assert time.monotonic() - t < 1.5
    assert len(lk.sent) == 1 + 4 * (4 + 1)  # corrupted replies: a bounded number of fast resends


def test_client_seq_skips_ff():
    lk = ScriptedLink(lambda f: reply(f, INFO))
    c = P.Client(lk, timeout=0.5, first_seq=253)
    for _ in range(4):
        c.info()
    assert [f.seq for f in lk.sent] == [253, 254, 0, 1]


# ------------------------------------------------------------------ links


def test_pipelink_large_writes_do_not_deadlock():
    lk = PipeLink.spawn(["cat"])
    data = os.urandom(4 << 20)
    got = bytearray()

    def reader():
        while len(got) < len(data):
            got.extend(lk.read(1 << 16, 5.0))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    lk.write(data)  # 4 MiB: far more than a pipe buffer; cat blocks unless stdout is drained
    t.join(20)
    assert bytes(got) == data
    lk.close()
    assert lk.returncode == 0


def test_pipelink_read_timeout_eof_and_close():
    lk = PipeLink.spawn([sys.executable, "-c", "import sys,time; sys.stdout.write('hi'); sys.stdout.flush();"
                         "sys.stderr.write('oops'); time.sleep(0.3)"])
    assert lk.read(10, 2.0) == b"hi"
    t = time.monotonic()
    assert lk.read(10, 0.05) == b""
    assert time.monotonic() - t < 0.2
    with pytest.raises(LinkClosed, match="oops"):
        lk.read(10, 5.0)
    lk.close()
    assert lk.returncode == 0


def test_pipelink_close_reaps_a_process_that_ignores_eof():
    lk = PipeLink.spawn([sys.executable, "-c", "import time; time.sleep(60)"], close_timeout=0.2)
    t = time.monotonic()
    lk.close()
    assert time.monotonic() - t < 3
    assert lk.returncode is not None and lk.proc.poll() is not None


def test_pipelink_write_to_a_process_that_does_not_read_times_out():
    lk = PipeLink.spawn([sys.executable, "-c", "import time; time.sleep(60)"], write_timeout=0.3,
                        close_timeout=0.2)
    t = time.monotonic()
    with pytest.raises(LinkError, match="did not read its input"):
        lk.write(b"x" * (4 << 20))
    assert time.monotonic() - t < 2
    lk.close()


def test_pipelink_write_to_dead_process_raises():
    lk = PipeLink.spawn([sys.executable, "-c", "pass"])
    lk.proc.wait(10)
    with pytest.raises(LinkClosed):
        for _ in range(100):
            lk.write(b"x" * 65536)
    lk.close()


def test_serial_loop_url():
    with open_url("loop://", 115200) as lk:
        lk.write(b"\x01\x02\x03")
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < 3 and time.monotonic() < deadline:
            got += lk.read(10, 0.5)
        assert got == b"\x01\x02\x03"
        t = time.monotonic()
        assert lk.read(10, 0.05) == b""
        assert 0.04 < time.monotonic() - t < 0.5
        lk.write(b"abc")
        time.sleep(0.05)
        lk.reset_input()
        assert lk.read(10, 0.05) == b""


def test_open_url_bad_port_is_a_link_error():
    with pytest.raises(LinkError, match="cannot open /dev/hilkit-no-such-port"):
        open_url("/dev/hilkit-no-such-port")


# ------------------------------------------------------------------ portability and sanitizers


@pytest.mark.parametrize("target", list(pb.CROSS))
def test_firmware_compiles_warning_free(target, tmp_path):
    cc = pb.CROSS[target]
    if not pb.have(cc[0]):
        pytest.skip(f"{cc[0]} not installed")
    for src in (pb.FIRMWARE / "hk_proto.c", pb.FIRMWARE / "main.c"):
        for opt in ("-O0", "-O2", "-Os"):
            pb.run_cc([*cc, *pb.STRICT, opt, f"-I{pb.FIRMWARE}", f"-I{pb.MODEL}", "-c", src,
                       "-o", tmp_path / (src.stem + ".o")])


@pytest.mark.parametrize("target", ["m0plus", "m4f"])
def test_markers_are_distinct_global_functions(target, tmp_path):
    cc = pb.CROSS[target]
    if not pb.have(cc[0]):
        pytest.skip(f"{cc[0]} not installed")
    obj = tmp_path / "main.o"
    pb.run_cc([*cc, *pb.STRICT, "-O2", f"-I{pb.FIRMWARE}", f"-I{pb.MODEL}", "-c", pb.FIRMWARE / "main.c",
               "-o", obj])
    nm = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True, check=True).stdout
    syms = {line.split()[-1]: line.split()[-2] for line in nm.splitlines() if len(line.split()) >= 2}
    assert syms.get("hk_mark_begin") == "T" and syms.get("hk_mark_end") == "T"
    addr = {line.split()[-1]: line.split()[0] for line in nm.splitlines() if line.split()[-1].startswith("hk_mark_")
            and len(line.split()) == 3}
    assert addr["hk_mark_begin"] != addr["hk_mark_end"]


@pytest.mark.qemu
@pytest.mark.parametrize("target,qemu", [("aarch64", "qemu-aarch64"), ("armhf", "qemu-arm")])
def test_cross_firmware_under_qemu_user(target, qemu, tmp_path):
    cc = pb.CROSS[target]
    if not (pb.have(cc[0]) and pb.have(qemu)):
        pytest.skip(f"{cc[0]} or {qemu} not installed")
    exe = pb.build_firmware(tmp_path / "fw", cc=cc, flags=["-static"], board_id=target)
    lk = PipeLink.spawn([qemu, exe], env={})
    try:
        c = P.Client(lk, timeout=5.0)
        assert c.info()["board"] == target
        rng = np.random.default_rng(9)
        for i in range(50):
            x = rng.normal(size=4).astype(np.float32)
            r = c.infer(x)
            np.testing.assert_array_equal(r.outputs, pb.model_reference(x))
            assert r.extra[0] == i + 1
        with pytest.raises(P.DeviceError):
            c.infer([np.inf, 0, 0, 0])
    finally:
        lk.close()
    assert lk.returncode == 0


def _fuzz_stream(rng: np.random.Generator, n: int) -> list[bytes]:
    """Garbage, truncated, bit-flipped, over-long and valid frames of every type."""
    chunks = []
    for i in range(n):
        kind = int(rng.integers(0, 8))
        t = int(rng.integers(0, 256))
        seq = int(rng.integers(0, 256))
        size = int(rng.choice([0, 1, 3, 4, 12, 16, 17, int(rng.integers(0, P.MAX_PAYLOAD + 1))]))
        payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if t == P.MsgType.BENCH and size == 4:
            payload = struct.pack("<I", int(rng.integers(0, 50)))  # keep BENCH short
        if kind == 0:  # raw garbage with zeros in it
            chunks.append(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes())
        elif kind == 1:  # a valid frame of any type
            chunks.append(P.encode_frame(t, seq, payload))
        elif kind == 2:  # a valid INFER with random (possibly non-finite) floats
            chunks.append(P.encode_frame(2, seq, rng.integers(0, 256, 16, dtype=np.uint8).tobytes()))
        elif kind == 3:  # truncated
            f = P.encode_frame(t, seq, payload)
            chunks.append(f[:int(rng.integers(0, len(f)))] + b"\x00")
        elif kind == 4:  # bit flips
            f = bytearray(P.encode_frame(t, seq, payload))
            for _ in range(int(rng.integers(1, 4))):
                f[int(rng.integers(0, len(f)))] ^= 1 << int(rng.integers(0, 8))
            chunks.append(bytes(f))
        elif kind == 5:  # over-long: no 0x00 for longer than any frame
            chunks.append(rng.integers(1, 256, int(rng.integers(P.MAX_ENCODED - 2, 6000)),
                                       dtype=np.uint8).tobytes() + b"\x00")
        elif kind == 6:  # a body longer than the maximum, properly COBS-encoded and CRC'd
            body = bytes((2, seq)) + rng.integers(0, 256, P.MAX_PAYLOAD + int(rng.integers(1, 8)),
                                                  dtype=np.uint8).tobytes()
            chunks.append(P.cobs_encode(body + struct.pack("<I", P.crc32(body))) + b"\x00")
        else:  # the same request twice (duplicate path)
            f = P.encode_frame(2, seq, np.float32([1, 2, 3, 4]).tobytes())
            chunks.append(f + f)
    return chunks


def test_sanitized_firmware_survives_garbage(tmp_path):
    exe = pb.build_firmware(tmp_path / "fw_asan", flags=pb.SANITIZE, opt="-O1")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98")
    lk = PipeLink.spawn([exe], env=env)
    rng = np.random.default_rng(2024)
    chunks = _fuzz_stream(rng, 3000)
    sp = P.FrameSplitter()
    replies = []
    try:
        for i in range(0, len(chunks), 100):
            lk.write(b"".join(chunks[i:i + 100]))
            while True:
                data = lk.read(1 << 16, 0.0)
                if not data:
                    break
                replies += sp.feed(data)
        while True:  # wait for the firmware to work through its backlog
            data = lk.read(1 << 16, 1.0)
            if not data:
                break
            replies += sp.feed(data)
        # still answering correctly after all that
        c = P.Client(lk, timeout=10.0, first_seq=200)
        assert c.info()["n_in"] == 4
        assert c.stats.retries == 0
        np.testing.assert_array_equal(c.infer([1, 2, 3, 4]).outputs, pb.model_reference([1, 2, 3, 4]))
    finally:
        lk.close()
    assert lk.returncode == 0, lk.stderr_text
    assert "Sanitizer" not in lk.stderr_text and "runtime error" not in lk.stderr_text, lk.stderr_text
    # every byte the firmware sent was a valid frame
    assert len(replies) > 2000
    kinds = {}
    for enc in replies:
        assert enc is not None
        f = P.decode_frame(enc)
        kinds[f.type] = kinds.get(f.type, 0) + 1
    assert kinds.get(P.MsgType.ERROR, 0) > 500 and kinds.get(0x82, 0) > 100


# ---------------------------------------------------------------- INFER8 (lossless 8-bit input code)
def test_encode_u8_is_lossless_or_refuses():
    import struct as _st

    from hilkit.host.protocol import encode_u8
    digits_like = (np.arange(64) % 17).astype(np.float32) / 16.0
    code = encode_u8(digits_like)
    assert code is not None and len(code) == 8 + 64
    zero, scale = _st.unpack("<ff", code[:8])
    q = np.frombuffer(code[8:], np.uint8)
    assert zero == 0.0 and scale == 1.0 / 16.0
    assert np.array_equal(np.float32(zero) + np.float32(scale) * q.astype(np.float32), digits_like)
    shifted = digits_like * 3 - 1.5
    zero, scale = _st.unpack("<ff", encode_u8(shifted)[:8])
    assert zero == -1.5 and scale == 3.0 / 16.0
    rng = np.random.default_rng(0)
    assert encode_u8(rng.standard_normal(64).astype(np.float32)) is None  # no common grid
    assert encode_u8(np.arange(300, dtype=np.float32)) is None  # more than 256 levels
    assert encode_u8(np.array([0.0, np.nan], np.float32)) is None
    assert encode_u8(np.array([0.0, 0.1, 0.3], np.float32)) is None  # 0.3 is not 3 * 0.1 in float32
