"""LiteRT as a second reference and as a speed peer (docs/interchange.md).

- `reference_outputs(model, x)`: LiteRT's outputs for a batch in hilkit's layout ([N, C, H, W] or
  [N, F] in, [N, *output_shape] out), from a .tflite file or a hilkit model file (exported first).
- `compare(outputs, litert_outputs)`: the report keys `litert_agreement`, `litert_max_abs_diff`.
- `bench_vs(model, n)`: batch-1 latency of our generated C (built as a shared library, called with
  ctypes) and of LiteRT's interpreter (one thread), timed alternately in one process; medians.
"""
from __future__ import annotations

import ctypes
import hashlib
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from .errors import HilkitError
from .tflite import export_tflite, interpreter_class

CACHE = Path("out/litert")


class LiteRTError(HilkitError):
    """LiteRT could not load or run a model, or the peer library could not be built."""


def tflite_bytes(model) -> bytes:
    """The .tflite bytes for a .tflite path, a hilkit model file path or a LoadedModel."""
    from hilkit.models import modelfile

    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, modelfile.LoadedModel):
        return export_tflite(model)
    p = Path(model)
    if not p.is_file():
        raise LiteRTError(f"model {p} not found")
    data = p.read_bytes()
    if data[4:8] == b"TFL3":
        return data
    return export_tflite(p)


class Runner:
    """A LiteRT interpreter (single thread) that runs one sample at a time in hilkit's layout."""

    def __init__(self, model, num_threads: int = 1):
        data = tflite_bytes(model)
        try:
            self.it = interpreter_class()(model_content=data, num_threads=num_threads)
            self.it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise LiteRTError(f"LiteRT cannot load the model: {' '.join(str(e).split())}") from None
        ins, outs = self.it.get_input_details(), self.it.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise LiteRTError(f"the model has {len(ins)} inputs and {len(outs)} outputs; hilkit compares one of each")
        self.in_index, self.in_shape = ins[0]["index"], tuple(int(d) for d in ins[0]["shape"])
        self.out_index, self.out_shape = outs[0]["index"], tuple(int(d) for d in outs[0]["shape"])

    def to_tfl(self, x: np.ndarray) -> np.ndarray:
        """One sample in hilkit layout ([C, H, W], [F], or flat) -> the interpreter's input tensor."""
        x = np.asarray(x, dtype=np.float32)
        if len(self.in_shape) == 4:
            _, h, w, c = self.in_shape
            return np.ascontiguousarray(x.reshape(c, h, w).transpose(1, 2, 0)[None])
        return x.reshape(self.in_shape)

    def from_tfl(self, y: np.ndarray) -> np.ndarray:
        return y[0].transpose(2, 0, 1) if y.ndim == 4 else y[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.it.set_tensor(self.in_index, self.to_tfl(x))
        self.it.invoke()
        return self.from_tfl(self.it.get_tensor(self.out_index))


def reference_outputs(model, x) -> np.ndarray:
    """LiteRT's outputs for the batch x (hilkit layout, [N, ...]): float32 [N, *output_shape]."""
    r = Runner(model)
    x = np.asarray(x, dtype=np.float32)
    return np.stack([r(x[i]) for i in range(len(x))]).astype(np.float32)


def compare(outputs, litert_outputs) -> dict:
    """Top-1 agreement and max abs difference of board (or any) outputs against LiteRT's."""
    a = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
    b = np.asarray(litert_outputs, np.float32).reshape(len(litert_outputs), -1)
    if a.shape != b.shape:
        raise LiteRTError(f"outputs have shape {list(a.shape)}, LiteRT's {list(b.shape)}")
    return {"litert_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
            "litert_max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0}


# ---------------------------------------------------------------- our C as a shared library
def build_shared(model_path, workdir: Path = CACHE, exp: str = "libm", cflags: list[str] | None = None) -> Path:
    """Generate C for the host board and build it as a shared library (default: the host board's flags)."""
    from hilkit.codegen.build import resource_dir
    from hilkit.codegen.generate import generate

    from .boards import get_board

    model_path = Path(model_path)
    flags = list(get_board("host").cflags if cflags is None else cflags)
    # the kernels are headers compiled into the library: a change to any of them is a new library
    h = hashlib.sha256(model_path.read_bytes() + " ".join(flags).encode())
    for d in (resource_dir("kernels_c"), resource_dir("firmware")):
        for f in sorted(Path(d).glob("*.h")):
            h.update(f.name.encode() + f.read_bytes())
    digest = h.hexdigest()[:12]
    out = Path(workdir) / f"{model_path.stem}-{digest}-{exp}"
    lib = out / "libmodel.so"
    if lib.is_file():
        return lib
    generate(model_path, "host", out, exp=exp)
    cmd = ["gcc", "-std=c99", *flags, "-fPIC", "-shared", f"-I{resource_dir('kernels_c')}",
           f"-I{resource_dir('firmware')}", f"-I{out}", str(out / "model.c"), "-o", str(lib) + ".tmp", "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise LiteRTError(f"building {lib} failed: {' '.join(cmd)}\n{p.stderr.strip()}")
    Path(str(lib) + ".tmp").replace(lib)
    return lib


class OursRunner:
    """Our generated C, loaded with ctypes: one sample per call, in hilkit's layout."""

    def __init__(self, lib: Path, n_in: int, n_out: int):
        self.lib = ctypes.CDLL(str(Path(lib).resolve()))
        self.fn = self.lib.hk_model_infer
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.fn.restype = ctypes.c_int
        self.x = np.zeros(n_in, np.float32)
        self.y = np.zeros(n_out, np.float32)
        self.px, self.py = self.x.ctypes.data, self.y.ctypes.data

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.x[:] = np.asarray(x, np.float32).ravel()
        if self.fn(self.px, self.py) != 0:
            raise LiteRTError("hk_model_infer failed")
        return self.y.copy()


def _med_us(v) -> float:
    return statistics.median(v) / 1e3


def _floor_interpreter():
    """A LiteRT interpreter of the smallest graph (one 1 x 1 FULLY_CONNECTED): its invoke() is
    the cost of calling LiteRT from Python, as ctypes_floor_us is ours."""
    import tempfile

    from hilkit.models import modelfile
    from hilkit.models.layers import Dense

    graph, arrays = Dense(1, 1, np.random.default_rng(0)).to_graph((1,), name="floor")
    with tempfile.TemporaryDirectory(prefix="hk_floor_") as tmp:
        data = export_tflite(modelfile.save(Path(tmp) / "floor.npz", graph, arrays))
    it = interpreter_class()(model_content=data, num_threads=1)
    it.allocate_tensors()
    return it


def bench_vs(model_path, n: int = 2000, *, exp: str = "libm", warmup: int = 200, workdir: Path = CACHE,
             cflags: list[str] | None = None) -> dict:
    """Batch-1 latency of our generated C vs LiteRT (one thread), in one process.

    Both run the test samples in turn. Each iteration times, back to back: our call (write the
    input, `hk_model_infer` through ctypes, copy the output) and LiteRT's (`set_tensor`, `invoke`,
    `get_tensor`), and LiteRT's builtin kernels without the XNNPACK delegate. `ours_us`/`litert_us`
    are the medians of the inference calls alone (`hk_model_infer`, `invoke`), `*_call_us` include
    moving the input and output; `speedup` = litert_us / ours_us. `ctypes_floor_us` is the cost of
    calling an empty C function the same way (part of ours_us), `litert_floor_us` that of invoking
    LiteRT on a one-weight graph (part of litert_us); `speedup_net` compares the two with those
    floors taken off (the work inside the calls). Also checks top-1 agreement."""
    from hilkit.models import data, modelfile

    OpResolverType = None
    try:
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError:
        pass
    model_path = Path(model_path)
    m = modelfile.load(model_path)
    from .boards import get_board

    flags = list(get_board("host").cflags if cflags is None else cflags)
    ours = OursRunner(build_shared(model_path, workdir, exp, flags), int(np.prod(m.input_shape)),
                      int(np.prod(m.output_shape)))
    data_tfl = export_tflite(m)
    lit = Runner(data_tfl)
    builtin = None
    if OpResolverType is not None:
        it2 = interpreter_class()(model_content=data_tfl, num_threads=1,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it2.allocate_tensors()
        builtin = it2
    floor_it = _floor_interpreter()
    _, _, x_test, _ = data.digits_split()
    xs = x_test.reshape((-1,) + tuple(m.input_shape)).astype(np.float32)
    xt = [lit.to_tfl(x) for x in xs]
    agree = float(np.mean([ours(x).argmax() == lit(x).argmax() for x in xs]))

    it, ii, oi = lit.it, lit.in_index, lit.out_index
    f, px, py, buf, yb = ours.fn, ours.px, ours.py, ours.x, ours.y
    noop = ours.lib.hk_model_extra
    noop.argtypes, noop.restype = [ctypes.c_void_p], ctypes.c_int
    scratch = np.zeros(64, np.uint32)
    ps = scratch.ctypes.data
    t = {k: [] for k in ("ours", "ours_call", "lit", "lit_call", "builtin", "floor", "lit_floor")}
    clock = time.perf_counter_ns
    for i in range(warmup + n):
        k = i % len(xs)
        t0 = clock()
        buf[:] = xs[k].ravel()
        t1 = clock()
        f(px, py)
        t2 = clock()
        yb.copy()
        t3 = clock()
        it.set_tensor(ii, xt[k])
        t4 = clock()
        it.invoke()
        t5 = clock()
        it.get_tensor(oi)
        t6 = clock()
        if builtin is not None:
            builtin.set_tensor(ii, xt[k])
            t7 = clock()
            builtin.invoke()
            t8 = clock()
        t9 = clock()
        noop(ps)
        t10 = clock()
        floor_it.invoke()
        t11 = clock()
        if i >= warmup:
            t["ours"].append(t2 - t1)
            t["ours_call"].append(t3 - t0)
            t["lit"].append(t5 - t4)
            t["lit_call"].append(t6 - t3)
            if builtin is not None:
                t["builtin"].append(t8 - t7)
            t["floor"].append(t10 - t9)
            t["lit_floor"].append(t11 - t10)
    ours_us, lit_us = _med_us(t["ours"]), _med_us(t["lit"])
    floor_us, lit_floor_us = _med_us(t["floor"]), _med_us(t["lit_floor"])
    return {"model": m.name, "board": "host", "ours_us": ours_us, "litert_us": lit_us, "speedup": lit_us / ours_us,
            "ours_call_us": _med_us(t["ours_call"]), "litert_call_us": _med_us(t["lit_call"]),
            "speedup_call": _med_us(t["lit_call"]) / _med_us(t["ours_call"]),
            "litert_builtin_us": _med_us(t["builtin"]) if t["builtin"] else None,
            "ctypes_floor_us": floor_us, "litert_floor_us": lit_floor_us,
            "speedup_net": (lit_us - lit_floor_us) / max(ours_us - floor_us, 1e-3),
            "samples": n, "litert_threads": 1, "exp": exp, "cflags": flags,
            "top1_agreement_ours_vs_litert": agree,
            "method": "batch 1, one process, interleaved calls; ours: generated C as a shared library via ctypes; "
                      "LiteRT: Interpreter(num_threads=1), default delegates (XNNPACK); medians"}
