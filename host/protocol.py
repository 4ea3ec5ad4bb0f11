"""The hilkit framed protocol, host side (spec: docs/protocol.md; twin of firmware/hk_proto.c).

    frame = COBS(body) 0x00,  body = type:u8 | seq:u8 | payload | crc32:u32le

`Client` speaks it over any `hilkit.host.link.Link`: one request at a time, each with a sequence
number, resent with the same number on a timeout or a corrupted reply, a bounded number of times.
Bytes from a device are untrusted: every length is checked before it is used.
"""
from __future__ import annotations

import struct
import time
from collections import deque
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .errors import HilkitError
from .link import Link, LinkError

__all__ = [
    "PROTO_VERSION", "MAX_PAYLOAD", "MAX_BODY", "MAX_ENCODED", "SEQ_NONE", "MsgType", "ErrorCode",
    "ProtocolError", "FrameError", "DeviceError", "LinkError", "Frame", "InferResult",
    "cobs_encode", "cobs_decode", "crc32", "encode_frame", "decode_frame", "FrameSplitter",
    "encode_info_reply", "decode_info", "encode_infer_reply", "decode_infer", "decode_bench",
    "encode_error", "decode_error", "Client", "ClientStats",
    "Offload", "encode_offload_reply", "decode_offload",
]

PROTO_VERSION = 1
MAX_PAYLOAD = 2048
MAX_BODY = MAX_PAYLOAD + 6                   # type, seq, payload, crc32
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 1  # one COBS frame without its 0x00
SEQ_NONE = 0xFF                              # seq of replies to bad frames; never used by requests


class MsgType(IntEnum):
    INFO = 0x01
    INFER = 0x02
    BENCH = 0x03
    INFER8 = 0x04
    OFFLOAD = 0x85  # a reply to INFER/INFER8: the model hands the input to the host (MEANet)
    ERROR = 0x7F
    REPLY = 0x80


class ErrorCode(IntEnum):
    BAD_FRAME = 1
    BAD_LENGTH = 2
    UNKNOWN_TYPE = 3
    MODEL_FAILED = 4
    NOT_FINITE = 5


class ProtocolError(HilkitError):
    """The device answered, but not in a way this host understands (bad layout, wrong version)."""


class FrameError(ProtocolError):
    """A received frame is not valid COBS, is too short or too long, or fails its CRC."""


class DeviceError(ProtocolError):
    """The device answered a request with an ERROR reply."""

    def __init__(self, code: int, message: str, request: str = "request"):
        self.code = code
        self.message = message
        try:
            name = ErrorCode(code).name.lower().replace("_", " ")
        except ValueError:
            name = "unknown error"
        super().__init__(f"device rejected {request}: error {code} ({name}): {message}")


# ------------------------------------------------------------------ framing
def cobs_encode(data: bytes) -> bytes:
    """COBS-encode data (no trailing 0x00). A final run of a multiple of 254 non-zero bytes gets
    no empty block after it, exactly as firmware/hk_proto.c encodes."""
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        while len(part) >= 254:
            out.append(0xFF)
            out += part[:254]
            part = part[254:]
            if i == last and not part:
                return bytes(out)
        out.append(len(part) + 1)
        out += part
    return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    """Decode one COBS frame (without its 0x00); raises FrameError if it is not valid COBS."""
    enc = bytes(enc)
    n = len(enc)
    if n == 0:
        raise FrameError("empty COBS frame")
    out = bytearray()
    i = 0
    while i < n:
        code = enc[i]
        i += 1
        if code == 0:
            raise FrameError(f"0x00 inside a COBS frame at offset {i - 1}")
        k = code - 1
        if k > n - i:
            raise FrameError(f"COBS block at offset {i - 1} runs past the end of the frame")
        block = enc[i:i + k]
        if 0 in block:
            raise FrameError("0x00 inside a COBS frame")
        out += block
        i += k
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, as zlib computes it."""
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes
    crc: int = 0


def encode_frame(mtype: int, seq: int, payload: bytes = b"") -> bytes:
    """A whole frame: COBS(type | seq | payload | crc32le) followed by 0x00."""
    if not 0 <= mtype <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"type {mtype} and seq {seq} must be bytes (0..255)")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the protocol's {MAX_PAYLOAD}")
    head = bytes((mtype, seq)) + payload
    return cobs_encode(head + struct.pack("<I", crc32(head))) + b"\x00"


def decode_frame(enc: bytes) -> Frame:
    """Parse one received frame (without its 0x00): COBS, length and CRC checks."""
    if len(enc) > MAX_ENCODED:
        raise FrameError(f"frame of {len(enc)} bytes exceeds the maximum of {MAX_ENCODED}")
    body = cobs_decode(enc)
    if len(body) > MAX_BODY:
        raise FrameError(f"frame body of {len(body)} bytes exceeds the maximum of {MAX_BODY}")
    if len(body) < 6:
        raise FrameError(f"frame body of {len(body)} bytes is shorter than type+seq+crc (6)")
    (crc,) = struct.unpack_from("<I", body, len(body) - 4)
    if crc32(body[:-4]) != crc:
        raise FrameError("frame CRC mismatch")
    return Frame(body[0], body[1], body[2:-4], crc)


class FrameSplitter:
    """Cuts a byte stream into frames at 0x00. Empty frames are skipped; a frame longer than
    MAX_ENCODED is dropped whole and reported as None, so memory stays bounded whatever arrives."""

    def __init__(self):
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        self._buf += data
        frames: list[bytes | None] = []
        while True:
            idx = self._buf.find(0)
            if idx < 0:
                break
            chunk = bytes(self._buf[:idx])
            del self._buf[:idx + 1]
            if self._discarding:
                self._discarding = False
                frames.append(None)
            elif len(chunk) > MAX_ENCODED:
                frames.append(None)
            elif chunk:
                frames.append(chunk)
        if len(self._buf) > MAX_ENCODED:
            self._buf.clear()
            self._discarding = True
        return frames

    def clear(self) -> None:
        self._buf.clear()
        self._discarding = False


# ------------------------------------------------------------------ messages
_INFO_HEAD = struct.Struct("<HHHI")


def encode_info_reply(n_in: int, n_out: int, arena_bytes: int, in_shape, out_shape,
                      board: str, firmware: str, model_hash: str, proto: int = PROTO_VERSION) -> bytes:
    """The INFO reply payload a device sends (used by tests and simulated devices)."""
    p = bytearray(_INFO_HEAD.pack(proto, n_in, n_out, arena_bytes))
    for shape in (in_shape, out_shape):
        p.append(len(shape))
        p += struct.pack(f"<{len(shape)}H", *shape)
    for s in (board, firmware, model_hash):
        b = s.encode("ascii")[:255]
        p.append(len(b))
        p += b
    return bytes(p)


class _Reader:
    """Bounds-checked little-endian reads from an untrusted payload."""

    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise ProtocolError(f"{self.what} is truncated: needs {self.pos + n} bytes, "
                                f"got {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def string(self) -> str:
        (n,) = self.unpack("B")
        return self.take(n).decode("ascii", errors="replace")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(f"{self.what} has {len(self.data) - self.pos} unexpected trailing bytes")


def decode_info(payload: bytes) -> dict:
    """Parse an INFO reply payload into a dict (proto, n_in, n_out, arena_bytes, in_shape,
    out_shape, board, firmware, model_hash)."""
    r = _Reader(payload, "INFO reply")
    proto, n_in, n_out, arena = r.unpack("HHHI")
    if proto != PROTO_VERSION:
        raise ProtocolError(f"device speaks protocol version {proto}, this host speaks {PROTO_VERSION}: "
                            "rebuild the firmware with this hilkit")
    shapes = []
    for _ in range(2):
        (rank,) = r.unpack("B")
        shapes.append(tuple(r.unpack(f"{rank}H")))
    board, firmware, model_hash = r.string(), r.string(), r.string()
    r.end()
    for name, shape, n in (("input", shapes[0], n_in), ("output", shapes[1], n_out)):
        if int(np.prod(shape, dtype=np.int64)) != n:
            raise ProtocolError(f"INFO reply is inconsistent: {name} shape {shape} does not hold {n} values")
    if 4 * n_in > MAX_PAYLOAD or 9 + 4 * n_out > MAX_PAYLOAD:
        raise ProtocolError(f"INFO reply is inconsistent: n_in {n_in} / n_out {n_out} cannot fit a frame")
    return {"proto": proto, "n_in": n_in, "n_out": n_out, "arena_bytes": arena,
            "in_shape": shapes[0], "out_shape": shapes[1], "board": board, "firmware": firmware,
            "model_hash": model_hash}


@dataclass
class Offload:
    """What an OFFLOAD reply carries: the request's encoding (MsgType.INFER or INFER8), its payload
    as the device received it, and the float32 input it stands for (the device's own decoding)."""
    encoding: int
    data: bytes
    values: np.ndarray


@dataclass
class InferResult:
    outputs: np.ndarray            # float32, shape (n_out,); empty when the device offloaded
    cycles: int                    # the target's cycle counter over the inference (0 if none)
    extra: list[int] = field(default_factory=list)  # model-specific u32 counters
    offload: Offload | None = None  # set when the device answered OFFLOAD instead of outputs


def encode_infer_reply(outputs, cycles: int = 0, extra=()) -> bytes:
    """The INFER reply payload a device sends (used by tests and simulated devices)."""
    extra = list(extra)
    return (struct.pack("<QB", cycles, len(extra)) + struct.pack(f"<{len(extra)}I", *extra)
            + np.asarray(outputs, dtype="<f4").tobytes())


def decode_infer(payload: bytes, n_out: int | None = None) -> InferResult:
    """Parse an INFER reply payload; with n_out given, the output count must match it."""
    r = _Reader(payload, "INFER reply")
    cycles, n_extra = r.unpack("QB")
    extra = list(r.unpack(f"{n_extra}I"))
    rest = len(payload) - r.pos
    if rest % 4:
        raise ProtocolError(f"INFER reply has {rest} output bytes, not a whole number of float32")
    if n_out is not None and rest != 4 * n_out:
        raise ProtocolError(f"INFER reply has {rest // 4} outputs, the device's INFO said {n_out}")
    outputs = np.frombuffer(r.take(rest), dtype="<f4").astype(np.float32)
    return InferResult(outputs, cycles, extra)


def encode_offload_reply(encoding: int, data: bytes, cycles: int = 0, extra=()) -> bytes:
    """The OFFLOAD reply payload a device sends: cycles, counters, then the request's type and
    payload as received (used by tests, simulated devices and the link accounting)."""
    extra = list(extra)
    return (struct.pack("<QB", cycles, len(extra)) + struct.pack(f"<{len(extra)}I", *extra)
            + bytes((encoding,)) + bytes(data))


def decode_offload(payload: bytes, n_in: int) -> InferResult:
    """Parse an OFFLOAD reply payload (an input of n_in values); outputs is empty."""
    r = _Reader(payload, "OFFLOAD reply")
    cycles, n_extra = r.unpack("QB")
    extra = list(r.unpack(f"{n_extra}I"))
    (enc,) = r.unpack("B")
    data = payload[r.pos:]
    if enc == MsgType.INFER and len(data) == 4 * n_in:
        values = np.frombuffer(data, dtype="<f4").astype(np.float32)
    elif enc == MsgType.INFER8 and len(data) == 8 + n_in:
        zero, scale = struct.unpack_from("<ff", data)
        q = np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.float32)
        values = (np.float32(zero) + np.float32(scale) * q).astype(np.float32)  # as the device computes it
    else:
        raise ProtocolError(f"OFFLOAD reply carries {len(data)} bytes of encoding 0x{enc:02x}; "
                            f"expected an INFER ({4 * n_in} bytes) or INFER8 ({8 + n_in} bytes) input")
    if not np.all(np.isfinite(values)):
        raise ProtocolError("OFFLOAD reply carries a non-finite input")
    return InferResult(np.zeros(0, np.float32), cycles, extra, Offload(int(enc), bytes(data), values))


def decode_bench(payload: bytes) -> dict:
    """Parse a BENCH reply payload: total cycles over `reps` inferences."""
    r = _Reader(payload, "BENCH reply")
    cycles, reps = r.unpack("QI")
    r.end()
    return {"reps": reps, "cycles": cycles, "cycles_per_inference": cycles / reps if reps else 0.0}


def encode_error(code: int, message: str) -> bytes:
    return bytes((code,)) + message.encode("ascii", errors="replace")


def decode_error(payload: bytes) -> tuple[int, str]:
    if not payload:
        raise ProtocolError("ERROR reply without an error code")
    return payload[0], payload[1:].decode("ascii", errors="replace")


# ------------------------------------------------------------------ client
@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0        # resends of a request, for any reason
    timeouts: int = 0       # attempts that got no usable reply in time
    bad_frames: int = 0     # received frames that failed COBS/length/CRC checks
    nacks: int = 0          # ERROR replies with seq 0xFF (the device saw a bad frame)
    ignored: int = 0        # valid frames with another seq (late duplicates, stale replies)


class Client:
    """Requests over a link: `info()`, `infer(x)`, `bench(n)`.

    Each attempt waits at most `timeout` seconds for its reply. After `retries` resends that timed
    out (or after (retries + 1) * timeout in all) LinkError is raised, so no call blocks longer
    than that. A corrupted reply or a NACK causes an immediate resend.
    """

    def __init__(self, link: Link, timeout: float = 1.0, retries: int = 3, first_seq: int = 0):
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be > 0 and retries >= 0")
        self.link = link
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.stats = ClientStats()
        self.device_info: dict | None = None
        self._seq = first_seq % SEQ_NONE
        self._splitter = FrameSplitter()
        self._frames: deque[bytes | None] = deque()  # received, not yet looked at
        self.compact = True  # send INFER8 when the input's 8-bit code is lossless
        self.last_reply_type: int | None = None  # the message type of the last reply request() returned

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % SEQ_NONE  # 0..254: 0xFF is reserved for bad-frame replies
        return seq

    def request(self, mtype: int, payload: bytes = b"", timeout: float | None = None, *, also=()) -> bytes:
        """Send one request and return the payload of its reply (type mtype | 0x80, or one of the
        types in `also`; `last_reply_type` says which).
        Raises DeviceError for an ERROR reply, ProtocolError for a malformed one, LinkError when
        no valid reply arrives in time."""
        name = _name(mtype)
        timeout = self.timeout if timeout is None else float(timeout)
        seq = self._next_seq()
        # The leading 0x00 ends any half-received garbage on the device, so it cannot swallow
        # the start of this request.
        frame = b"\x00" + encode_frame(mtype, seq, payload)
        self.stats.requests += 1
        # Bounds: `retries` resends after timeouts; resends after a corrupted frame or a NACK
        # (which come fast, and may be stale ones from earlier garbage) are allowed a few more
        # times; and the whole request never takes longer than (retries + 1) * timeout.
        final = time.monotonic() + (self.retries + 1) * timeout
        max_fast = 4 * (self.retries + 1)
        timeouts = fast = 0
        problem = "no reply"
        while True:
            self.link.write(frame)
            kind, got = self._await(seq, min(time.monotonic() + timeout, final))
            if kind == "reply":
                if got.type == MsgType.ERROR:
                    code, message = decode_error(got.payload)
                    if code != ErrorCode.BAD_FRAME:
                        raise DeviceError(code, message, f"{name} (seq {seq})")
                    kind, got = "resend", "device reported a bad frame"
                elif got.type != (mtype | MsgType.REPLY) and got.type not in also:
                    raise ProtocolError(f"{name} (seq {seq}) was answered with message type "
                                        f"0x{got.type:02x}, expected 0x{mtype | MsgType.REPLY:02x}")
                else:
                    self.last_reply_type = got.type
                    return got.payload
            problem = got
            if kind == "timeout":
                timeouts += 1
            else:
                fast += 1
            if timeouts > self.retries or fast > max_fast or time.monotonic() >= final:
                break
            self.stats.retries += 1
        raise LinkError(f"no valid reply to {name} (seq {seq}) after {timeouts + fast} attempts in "
                        f"{(self.retries + 1) * timeout:g} s (last problem: {problem}); check that the "
                        "target is running and the link settings (port, baud)")

    def _await(self, seq: int, deadline: float) -> tuple[str, Frame | str]:
        """Wait for the reply with this seq: ("reply", frame), or ("resend", reason) after a
        corrupted frame or a device NACK, or ("timeout", reason) at the deadline."""
        resend = None
        while True:
            while self._frames:
                enc = self._frames.popleft()
                if enc is None:
                    self.stats.bad_frames += 1
                    resend = resend or "over-long frame"
                    continue
                try:
                    f = decode_frame(enc)
                except FrameError as e:
                    self.stats.bad_frames += 1
                    resend = resend or str(e)
                    continue
                if f.seq == seq:
                    return "reply", f
                if f.seq == SEQ_NONE and f.type == MsgType.ERROR:
                    self.stats.nacks += 1
                    resend = resend or "device reported a bad frame"
                    continue
                self.stats.ignored += 1
            # Everything already received is consumed before acting on a bad frame, so one
            # burst of garbage costs one resend, not one per fragment.
            if resend is not None:
                return "resend", resend
            left = deadline - time.monotonic()
            if left <= 0:
                self.stats.timeouts += 1
                return "timeout", "timeout"
            data = self.link.read(4096, left)
            if data:
                self._frames.extend(self._splitter.feed(data))

    # -------------------------------------------------------------- messages
    def info(self) -> dict:
        """The device's INFO: proto, n_in, n_out, arena_bytes, in_shape, out_shape, board,
        firmware, model_hash. Cached for infer()'s checks."""
        self.device_info = decode_info(self.request(MsgType.INFO))
        return dict(self.device_info)

    def infer(self, x, timeout: float | None = None) -> InferResult:
        """Run one inference on the device. x is any array of n_in values (cast to float32).
        A model that hands the input to the host (MEANet) answers OFFLOAD: the result then has
        empty outputs and `offload` set."""
        if self.device_info is None:
            self.info()
        n_in, n_out = self.device_info["n_in"], self.device_info["n_out"]
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size != n_in:
            raise ValueError(f"input has {x.size} values, the model on the device takes {n_in}")
        code = encode_u8(x) if self.compact else None
        if code is not None:
            payload = self.request(MsgType.INFER8, code, timeout, also=(MsgType.OFFLOAD,))
        else:
            payload = self.request(MsgType.INFER, x.astype("<f4").tobytes(), timeout, also=(MsgType.OFFLOAD,))
        if self.last_reply_type == MsgType.OFFLOAD:
            return decode_offload(payload, n_in)
        return decode_infer(payload, n_out)

    def bench(self, n: int, timeout: float | None = None) -> dict:
        """Run the last input n times on the device; returns reps, cycles, cycles_per_inference.
        Give a timeout that covers n inferences."""
        if not 0 <= n <= 0xFFFFFFFF:
            raise ValueError(f"bench reps {n} must fit a u32")
        out = decode_bench(self.request(MsgType.BENCH, struct.pack("<I", n), timeout))
        if out["reps"] != n:
            raise ProtocolError(f"BENCH reply is for {out['reps']} reps, asked for {n}")
        return out


def encode_u8(x: np.ndarray) -> bytes | None:
    """The INFER8 payload for x when it is lossless, else None.

    INFER8 carries `zero:f32, scale:f32, q:u8[n]` and the device computes x = zero + scale * q in
    float32. It is used only when every q * scale and zero + q * scale is exact in float32 (so
    the device gets bit-identical inputs whatever its rounding or FMA contraction): true for
    images with at most 256 evenly spaced levels, like the digits' 17 grey levels. A quarter of
    the bytes of INFER on a UART."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return None
    levels = np.unique(x)
    if levels.size > 256:
        return None
    zero = levels[0]
    scale = np.float32(np.min(np.diff(levels))) if levels.size > 1 else np.float32(1.0)
    q = np.rint((x.astype(np.float64) - float(zero)) / float(scale))
    if q.max() > 255:
        return None
    exact = float(zero) + float(scale) * q  # float64 holds these products and sums exactly
    if not np.array_equal(exact, x.astype(np.float64)):
        return None
    if not np.array_equal((float(scale) * q).astype(np.float32).astype(np.float64), float(scale) * q):
        return None
    return struct.pack("<ff", float(zero), float(scale)) + q.astype(np.uint8).tobytes()


def _name(mtype: int) -> str:
    try:
        return MsgType(mtype).name
    except ValueError:
        return f"message 0x{mtype:02x}"
