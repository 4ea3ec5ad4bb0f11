"""Host side of the int8 kernel driver (tests/c/s8_driver.c) and its board program (s8bench.c).

Requests are built from the same arguments as the numpy reference (hilkit.ops.int8), so a test or a
bench compares `int8.conv2d(x, w, b, **kw)` with the board's answer to `s8bench.conv2d(x, w, b, **kw)`:

    import s8bench
    req = s8bench.conv2d(x, w, bias, stride=(2, 2), padding="same", in_zp=zp, out_zp=0, mult=m, shift=s)
    ys = s8bench.run_host(exe, [req])                  # the sanitizer build of s8_driver.c
    with s8bench.S8Bench("mps2-an386", workdir, cases=[req]) as sb:
        y, insns = sb.run(req)                         # generic kernel call, shapes at run time
        y, insns = sb.run(req, case=0)                 # compiled case 0: literal shapes, as model.c

`insns` is the instruction count of the kernel call alone (the marked span minus the empty span of
op 0); None off QEMU. Compiled cases exist for conv, depthwise, FC and pooling requests.
"""
from __future__ import annotations

import contextlib
import hashlib
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "s8bench.c"
DRIVER = HERE.parent.parent / "tests" / "c" / "s8_driver.c"
CASE_BASE = 100
# ops that can be compiled as cases: request op -> the driver's inline body s8_<name>
CASE_BODIES = {10: "conv", 11: "dwconv", 12: "fc", 13: "fc_pc", 20: "avgpool", 21: "maxpool", 22: "mean",
               30: "add", 40: "softmax", 41: "logistic"}


class S8BenchError(RuntimeError):
    """The driver misbehaved (bad banner, a refused request, a short answer)."""


@dataclass
class Request:
    """One driver request and the shape/dtype of its answer."""
    op: int
    ints: list[int]
    bufs: list[bytes]
    out_shape: tuple[int, ...]
    out_dtype: str = "i1"
    scratch: int = 0
    macs: int = 0
    label: str = field(default="", compare=False)

    @property
    def out_bytes(self) -> int:
        return int(np.prod(self.out_shape, dtype=np.int64)) * np.dtype(self.out_dtype).itemsize

    def encode(self, op: int | None = None) -> bytes:
        head = struct.pack("<4i", self.op if op is None else op, self.out_bytes, self.scratch, len(self.ints))
        ints = struct.pack(f"<{len(self.ints)}i", *self.ints)
        bufs = b"".join(struct.pack("<i", len(b)) + b for b in self.bufs)
        return head + ints + struct.pack("<i", len(self.bufs)) + bufs

    def decode(self, raw: bytes) -> np.ndarray:
        return np.frombuffer(raw, np.dtype(self.out_dtype).newbyteorder("<")).reshape(self.out_shape).copy()


def _i8(a) -> bytes:
    return np.ascontiguousarray(a, np.int8).tobytes()


def _i32(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, np.int64).astype("<i4")).tobytes()


def _per_channel(v, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, np.int64), (n,))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


# ---------------------------------------------------------------- primitives (ops 1-4)
def srdhm(a, b) -> Request:
    a = np.asarray(a).ravel()
    return Request(1, [], [_i32(a), _i32(np.asarray(b).ravel())], (a.size,), "i4")


def rounding_divide_by_pot(x, e) -> Request:
    x = np.asarray(x).ravel()
    return Request(2, [], [_i32(x), _i32(np.broadcast_to(e, x.shape))], (x.size,), "i4")


def multiply_by_quantized_multiplier(x, M, shift) -> Request:
    x = np.asarray(x).ravel()
    return Request(3, [], [_i32(x), _i32(np.broadcast_to(M, x.shape)), _i32(np.broadcast_to(shift, x.shape))],
                   (x.size,), "i4")


def requantize(acc, M, shift, out_zp: int, act_min: int, act_max: int) -> Request:
    acc = np.asarray(acc).ravel()
    return Request(4, [int(out_zp), int(act_min), int(act_max)],
                   [_i32(acc), _i32(np.broadcast_to(M, acc.shape)), _i32(np.broadcast_to(shift, acc.shape))],
                   (acc.size,))


# ---------------------------------------------------------------- conv / depthwise / FC
def conv2d(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding="same", in_zp: int, out_zp: int, mult,
           shift, act_min: int = -128, act_max: int = 127) -> Request:
    """CONV_2D with ops.int8.conv2d's arguments."""
    from hilkit.ops.int8 import padding_offsets
    n, h, wd, c = np.shape(x)
    o, kh, kw, ci = np.shape(w)
    st, dl = _pair(stride), _pair(dilation)
    pt, pl, oh, ow = padding_offsets(h, wd, kh, kw, st, dl, padding)
    ints = [n, h, wd, c, o, kh, kw, ci, oh, ow, *st, pt, pl, *dl, int(in_zp), int(out_zp), int(act_min),
            int(act_max), int(bias is not None)]
    bufs = [_i8(x), _i8(w), _i32(bias if bias is not None else []), _i32(_per_channel(mult, o)),
            _i32(_per_channel(shift, o))]
    return Request(10, ints, bufs, (n, oh, ow, o), scratch=2 * kh * kw * ci * 2, macs=n * oh * ow * o * kh * kw * ci)


def depthwise_conv2d(x, w, bias=None, *, multiplier: int = 1, stride=(1, 1), dilation=(1, 1), padding="same",
                     in_zp: int, out_zp: int, mult, shift, act_min: int = -128, act_max: int = 127) -> Request:
    """DEPTHWISE_CONV_2D with ops.int8.depthwise_conv2d's arguments."""
    from hilkit.ops.int8 import padding_offsets
    n, h, wd, c = np.shape(x)
    _, kh, kw, cm = np.shape(w)
    st, dl = _pair(stride), _pair(dilation)
    pt, pl, oh, ow = padding_offsets(h, wd, kh, kw, st, dl, padding)
    ints = [n, h, wd, c, kh, kw, int(multiplier), oh, ow, *st, pt, pl, *dl, int(in_zp), int(out_zp), int(act_min),
            int(act_max), int(bias is not None)]
    bufs = [_i8(x), _i8(w), _i32(bias if bias is not None else []), _i32(_per_channel(mult, cm)),
            _i32(_per_channel(shift, cm))]
    return Request(11, ints, bufs, (n, oh, ow, cm), macs=n * oh * ow * cm * kh * kw)


def fully_connected(x2d, w, bias=None, *, in_zp: int, out_zp: int, mult, shift, act_min: int = -128,
                    act_max: int = 127, w_zp: int = 0) -> Request:
    """FULLY_CONNECTED with ops.int8.fully_connected's arguments: scalar mult/shift run the
    per-tensor kernel (hk_fc_s8), arrays the per-channel one (hk_fc_per_channel_s8)."""
    o, i = np.shape(w)
    x = np.asarray(x2d, np.int8).reshape(-1, i)
    ints = [x.shape[0], i, o, int(in_zp), int(w_zp), int(out_zp), int(act_min), int(act_max), int(bias is not None)]
    bufs = [_i8(x), _i8(w), _i32(bias if bias is not None else [])]
    if np.ndim(mult) == 0:
        return Request(12, ints + [int(mult), int(shift)], bufs, (x.shape[0], o), macs=x.shape[0] * o * i)
    return Request(13, ints, bufs + [_i32(_per_channel(mult, o)), _i32(_per_channel(shift, o))], (x.shape[0], o),
                   macs=x.shape[0] * o * i)


# ---------------------------------------------------------------- pooling, mean
def _pool(op: int, x, size, stride, padding, act_min, act_max) -> Request:
    from hilkit.ops.int8 import padding_offsets
    n, h, wd, c = np.shape(x)
    (kh, kw), st = _pair(size), _pair(stride)
    pt, pl, oh, ow = padding_offsets(h, wd, kh, kw, st, (1, 1), padding)
    ints = [n, h, wd, c, oh, ow, kh, kw, *st, pt, pl, int(act_min), int(act_max)]
    return Request(op, ints, [_i8(x)], (n, oh, ow, c), macs=n * oh * ow * c * kh * kw)


def avg_pool2d(x, *, size, stride, padding="valid", act_min: int = -128, act_max: int = 127) -> Request:
    return _pool(20, x, size, stride, padding, act_min, act_max)


def max_pool2d(x, *, size, stride, padding="valid", act_min: int = -128, act_max: int = 127) -> Request:
    return _pool(21, x, size, stride, padding, act_min, act_max)


def mean(x, axes=(1, 2), keepdims: bool = True, *, in_zp: int, out_zp: int, mult: int, shift: int) -> Request:
    """MEAN over adjacent axes (the kernel's [outer][count][inner] view)."""
    shape = np.shape(x)
    ax = sorted({a % len(shape) for a in np.atleast_1d(axes).tolist()})
    if ax != list(range(ax[0], ax[-1] + 1)):
        raise ValueError(f"hk_mean_s8 reduces adjacent axes only, not {ax}")
    outer = int(np.prod(shape[:ax[0]], dtype=np.int64))
    count = int(np.prod(shape[ax[0]:ax[-1] + 1], dtype=np.int64))
    inner = int(np.prod(shape[ax[-1] + 1:], dtype=np.int64))
    out_shape = tuple(1 if i in ax else s for i, s in enumerate(shape)) if keepdims else \
        tuple(s for i, s in enumerate(shape) if i not in ax)
    return Request(22, [outer, count, inner, int(in_zp), int(out_zp), int(mult), int(shift)], [_i8(x)], out_shape)


# ---------------------------------------------------------------- add, softmax, logistic
def add(x1, x2, *, in1_zp: int, in2_zp: int, out_zp: int, left_shift: int = 20, in1_mult: int, in1_shift: int,
        in2_mult: int, in2_shift: int, out_mult: int, out_shift: int, act_min: int = -128,
        act_max: int = 127) -> Request:
    """ADD with ops.int8.add's arguments; different shapes broadcast (up to 4-D) through op 31."""
    p = [int(in1_zp), int(in2_zp), int(out_zp), int(left_shift), int(in1_mult), int(in1_shift), int(in2_mult),
         int(in2_shift), int(out_mult), int(out_shift), int(act_min), int(act_max)]
    a, b = np.asarray(x1, np.int8), np.asarray(x2, np.int8)
    if a.shape == b.shape:
        return Request(30, [a.size] + p, [_i8(a), _i8(b)], a.shape)
    out = np.broadcast_shapes(a.shape, b.shape)
    if len(out) > 4:
        raise ValueError("hk_add_bcast_s8 broadcasts up to 4-D")
    d = (1,) * (4 - len(out)) + tuple(out)

    def strides(t):
        t4 = t.reshape((1,) * (4 - t.ndim) + t.shape)
        full = np.cumprod((1,) + t4.shape[:0:-1])[::-1]           # element strides of t4
        return [0 if t4.shape[k] == 1 and d[k] != 1 else int(full[k]) for k in range(4)]
    return Request(31, [*d, *strides(a), *strides(b)] + p, [_i8(a), _i8(b)], tuple(out))


def softmax(x, *, mult: int, left_shift: int, diff_min: int) -> Request:
    x = np.asarray(x, np.int8)
    depth = x.shape[-1]
    return Request(40, [x.size // depth, depth, int(mult), int(left_shift), int(diff_min)], [_i8(x)], x.shape)


def logistic(x, *, in_zp: int, mult: int, left_shift: int, radius: int) -> Request:
    x = np.asarray(x, np.int8)
    return Request(41, [x.size, int(in_zp), int(mult), int(left_shift), int(radius)], [_i8(x)], x.shape)


# ---------------------------------------------------------------- data movement, (de)quantize
def pad(x, pads, pad_value: int) -> Request:
    x = np.asarray(x, np.int8)
    if x.ndim != 4:
        raise ValueError("hk_pad_s8 pads 4-D tensors")
    pp = np.asarray(pads, np.int64).reshape(4, 2)
    out = tuple(int(s + pp[k].sum()) for k, s in enumerate(x.shape))
    return Request(50, [*x.shape, *pp.ravel().tolist(), int(pad_value)], [_i8(x)], out)


def concatenation(xs, axis: int = -1) -> Request:
    xs = [np.asarray(a, np.int8) for a in xs]
    ax = axis % xs[0].ndim
    outer = int(np.prod(xs[0].shape[:ax], dtype=np.int64))
    inner = int(np.prod(xs[0].shape[ax + 1:], dtype=np.int64))
    sizes = [a.shape[ax] for a in xs]
    out = list(xs[0].shape)
    out[ax] = sum(sizes)
    return Request(51, [len(xs), outer, inner, *sizes], [_i8(a) for a in xs], tuple(out))


def quantize_op(x, scale, zero_point: int) -> Request:
    x = np.asarray(x, np.float32)
    return Request(52, [x.size, int(zero_point)],
                   [x.astype("<f4").tobytes(), np.float32(scale).astype("<f4").tobytes()], x.shape)


def dequantize_op(x, scale, zero_point: int) -> Request:
    x = np.asarray(x, np.int8)
    return Request(53, [x.size, int(zero_point)], [_i8(x), np.float32(scale).astype("<f4").tobytes()], x.shape, "f4")


def requantize_op(x, *, in_zp: int, out_zp: int, mult: int, shift: int) -> Request:
    x = np.asarray(x, np.int8)
    return Request(54, [x.size, int(in_zp), int(out_zp), int(mult), int(shift)], [_i8(x)], x.shape)


# ---------------------------------------------------------------- running requests
def _responses(reqs, raw: bytes) -> list[np.ndarray]:
    out, pos = [], 0
    for r in reqs:
        if pos + 4 > len(raw):
            raise S8BenchError(f"the driver stopped answering at request {len(out)} ({r.label or r.op})")
        status = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        if status != 0:
            raise S8BenchError(f"request {len(out)} (op {r.op}) refused: status {status} (1 too large, 2 unknown op)")
        out.append(r.decode(raw[pos:pos + r.out_bytes]))
        pos += r.out_bytes
    if pos != len(raw):
        raise S8BenchError(f"{len(raw) - pos} unexpected bytes after the last answer")
    return out


def run_host(exe: Path, reqs, timeout: float = 300.0) -> list[np.ndarray]:
    """Send every request to a native s8_driver executable at once; its answers, in order."""
    reqs = list(reqs)
    p = subprocess.run([str(exe)], check=False, input=b"".join(r.encode() for r in reqs), capture_output=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise S8BenchError(f"{exe} exited with {p.returncode}: {p.stderr.decode(errors='replace')[-3000:]}")
    return _responses(reqs, p.stdout)


def case_source(reqs) -> str:
    """A C file: one compiled case per request (its op body with its ints as literals), then s8bench.c."""
    out = [(f"/* Generated by s8bench.py: {len(reqs)} compiled cases. */\n#define S8_CASES 1\n"
           f'#include "{SOURCE}"\n\n')]
    for i, r in enumerate(reqs):
        if r.op not in CASE_BODIES:
            raise ValueError(f"op {r.op} has no compiled-case body (only {sorted(CASE_BODIES)})")
        vals = ", ".join(str(int(v)) for v in r.ints)
        out.append(f"/* {r.label or CASE_BODIES[r.op]}: op {r.op} */\n"
                   f"S8_NOINLINE static void s8_case_{i}(const s8_req *r)\n{{\n"
                   f"    static const int32_t v[] = {{{vals}}};\n"
                   f"    s8_{CASE_BODIES[r.op]}(r, v);\n}}\n\n")
    table = ", ".join(f"s8_case_{i}" for i in range(len(reqs))) or "0"
    out.append(f"static const s8_fn s8_cases[] = {{{table}}};\n\n"
               f"static int s8_case_count(void)\n{{\n    return {len(reqs)};\n}}\n\n"
               "static s8_fn s8_case_get(int i)\n{\n    return s8_cases[i];\n}\n")
    return "".join(out)


def build(board: str, build_dir: Path, cases=()) -> Path:
    """Build s8bench.c (with `cases` compiled in) for `board` on the project's board layer."""
    from hilkit.codegen.build import build_firmware
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    src = SOURCE
    if cases:
        src = build_dir / "s8bench_cases.c"
        text = case_source(list(cases))
        if not src.is_file() or src.read_text() != text:
            src.write_text(text)
    return build_firmware(None, board, build_dir=build_dir / "build", sources=[src])


def _read_exact(link, n: int, timeout: float = 300.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise S8BenchError(f"timed out after {len(buf)}/{n} bytes")
        buf += link.read(n - len(buf), left)
    return buf


class S8Bench:
    """A running s8bench firmware on one board (context manager)."""

    def __init__(self, board: str, workdir: Path, cases=(), image: Path | None = None):
        from hilkit.host import runner
        self.board, self.cases = board, list(cases)
        key = repr([(r.op, r.ints) for r in self.cases]).encode()
        tag = f"s8bench-{board}" + (f"-{hashlib.sha256(key).hexdigest()[:10]}" if self.cases else "")
        self.image = Path(image) if image else build(board, Path(workdir) / tag, self.cases)
        self.target = runner.start(board, self.image)
        banner = b""
        while not banner.endswith(b"\n"):
            banner += _read_exact(self.target.link, 1, 60.0)
        if banner != f"HKS8 {board}\n".encode():
            self.target.close()
            raise S8BenchError(f"unexpected banner {banner!r}")
        self.overhead = 0
        self.overhead = self.run(Request(0, [], [], (0,)))[1] or 0

    def run(self, req: Request, case: int | None = None) -> tuple[np.ndarray, int | None]:
        """The answer to one request and the instruction count of its kernel call (None off QEMU).
        With `case`, compiled case `case` runs on the request's buffers."""
        link = self.target.link
        link.write(b"R" + req.encode(None if case is None else CASE_BASE + case))
        status = struct.unpack("<I", _read_exact(link, 4))[0]
        if status != 0:
            raise S8BenchError(f"op {req.op} refused on {self.board}: status {status} (1 too large, 2 unknown op)")
        y = req.decode(_read_exact(link, req.out_bytes))
        counts = self.target.instruction_counts()
        return y, (counts[-1] - self.overhead if counts else None)

    def close(self) -> None:
        # Ask the firmware to exit; a target that is already gone is closed all the same.
        with contextlib.suppress(Exception):
            self.target.link.write(b"X\x00")
            self.target.wait(10)
        self.target.close()

    def __enter__(self) -> S8Bench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
