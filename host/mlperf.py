"""MLPerf Tiny mode: build the firmware that speaks the MLPerf Tiny / EEMBC device protocol, and
a host client for it.

The protocol (what the community's benchmark runners speak, at 115200 baud): ASCII commands
ending in `%` (`name`, `profile`, `db load N`, `db HEX..`, `infer N W`, `results`), each answered
by `m-...` lines (or `e-[...]` errors) and then `m-ready`. firmware/mlperf.c implements it over
the same board layer as the framed protocol; the input buffer holds the model's n_in float32
values, little-endian, and `m-results-[...]` gives every output with 9 significant digits, which
is exact for float32.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import HilkitError
from .link import Link

READY = "m-ready"
BAUD = 115200
DB_CHUNK_BYTES = 32       # 64 hex digits a command: fits the 80-character buffer of the reference firmware


class MlperfError(HilkitError):
    """The device answered with an e-[...] line, an unexpected line, or not at all."""


@dataclass
class InferReply:
    results: np.ndarray                 # float32 outputs of the last inference
    lap_us: tuple[int, int]             # the device's timestamps around the timed loop
    lines: list[str] = field(default_factory=list)

    @property
    def us_per_inference(self) -> float | None:
        n = next((int(x.rsplit("-", 1)[1]) for x in self.lines if x.startswith("m-infer-start-")), 0)
        return (self.lap_us[1] - self.lap_us[0]) / n if n else None


def parse_results(line: str) -> np.ndarray:
    m = re.fullmatch(r"m-results-\[(.*)\]", line.strip())
    if m is None:
        raise MlperfError(f"not a results line: {line!r}")
    body = m.group(1)
    try:
        return np.array([float(t) for t in body.split(",")] if body else [], dtype=np.float32)
    except ValueError:
        raise MlperfError(f"results line has a value that is not a number: {line!r}") from None


class MlperfClient:
    """Commands over a link (`hilkit.host.link`): each returns the lines before `m-ready`.

    Every wait is bounded by `timeout` (per command; give `infer` a longer one for many runs)."""

    def __init__(self, link: Link, timeout: float = 5.0):
        self.link = link
        self.timeout = float(timeout)
        self._buf = b""

    # -------------------------------------------------------------- lines
    def _line(self, deadline: float) -> str:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MlperfError(f"no complete line from the device in time (have {self._buf[-80:]!r})")
            self._buf += self.link.read(4096, left)
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("ascii", errors="replace").strip("\r")

    def read_until_ready(self, timeout: float | None = None) -> list[str]:
        """Lines up to (not including) the next `m-ready`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines = []
        while True:
            line = self._line(deadline)
            if line == READY:
                return lines
            lines.append(line)

    def command(self, cmd: str, timeout: float | None = None, check: bool = True) -> list[str]:
        """Send `cmd%` and return its reply lines; MlperfError on an `e-` line when check."""
        if "%" in cmd:
            raise ValueError("a command must not contain '%' (it ends the command)")
        self.link.write(cmd.encode("ascii") + b"%")
        lines = self.read_until_ready(timeout)
        errors = [x for x in lines if x.startswith("e-")]
        if check and errors:
            raise MlperfError(f"{cmd.split(' ')[0]}: device error {errors[0]}")
        return lines

    def sync(self, timeout: float | None = None) -> list[str]:
        """Wait for the boot banner (m-init-done ... m-ready) if it comes, then make sure the device
        answers: the lines of the banner, or [] if the device was already running."""
        try:
            banner = self.read_until_ready(timeout)
        except MlperfError:
            banner = []
        self.name()
        return banner

    # -------------------------------------------------------------- commands
    def name(self) -> tuple[str, str]:
        """("dut", vendor) from m-name-dut-[vendor]."""
        for line in self.command("name"):
            m = re.fullmatch(r"m-name-(\w+)-\[(.*)\]", line)
            if m:
                return m.group(1), m.group(2)
        raise MlperfError("name: no m-name- line")

    def profile(self) -> dict:
        out = {}
        for line in self.command("profile"):
            m = re.fullmatch(r"m-(profile|model)-\[(.*)\]", line)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    def timestamp(self) -> int:
        for line in self.command("timestamp"):
            if line.startswith("m-lap-us-"):
                return int(line[len("m-lap-us-"):])
        raise MlperfError("timestamp: no m-lap-us- line")

    def load(self, x) -> None:
        """Load the input (n_in values, sent as float32 little-endian) with db load / db HEX."""
        data = np.asarray(x, dtype="<f4").reshape(-1).tobytes()
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise MlperfError(f"db load: unexpected reply {lines}")
        for i in range(0, len(data), DB_CHUNK_BYTES):
            lines = self.command("db " + data[i:i + DB_CHUNK_BYTES].hex())
        if "m-load-done" not in lines:
            raise MlperfError(f"db: the device did not report m-load-done ({lines})")

    def infer(self, n: int = 1, warmup: int = 0, timeout: float | None = None) -> InferReply:
        """`infer N W`: W warm-up and N timed runs of the loaded input; the results of the last."""
        lines = self.command(f"infer {int(n)} {int(warmup)}", timeout)
        laps = [int(x[len("m-lap-us-"):]) for x in lines if x.startswith("m-lap-us-")]
        res = [x for x in lines if x.startswith("m-results-")]
        if len(laps) != 2 or len(res) != 1 or "m-infer-done" not in lines:
            raise MlperfError(f"infer: unexpected reply {lines}")
        return InferReply(parse_results(res[0]), (laps[0], laps[1]), lines)

    def results(self) -> np.ndarray:
        res = [x for x in self.command("results") if x.startswith("m-results-")]
        if len(res) != 1:
            raise MlperfError("results: no m-results- line")
        return parse_results(res[0])


# ------------------------------------------------------------------ building
def firmware_source() -> Path:
    from hilkit.codegen.build import resource_dir
    return resource_dir("firmware") / "mlperf.c"


def build_mlperf_firmware(model_dir, board, build_dir=None, jobs: int = 2) -> Path:
    """Build firmware/mlperf.c with the model in `model_dir` (generated by `hilkit compile`, or
    any folder with model.h/model.c) for `board`; the image path.

    Uses the build driver's program-sources path with HK_PROTOCOL_MLPERF defined, which is what
    `-DHK_PROTOCOL=mlperf` selects in firmware/CMakeLists.txt."""
    from hilkit.codegen.build import build_firmware

    from .boards import get_board

    board = get_board(board)
    model_dir = Path(model_dir)
    if not (model_dir / "model.h").is_file():
        raise MlperfError(f"{model_dir} holds no model.h: run `hilkit compile` first")
    mb = replace(board, defines={**board.defines, "HK_PROTOCOL_MLPERF": 1})
    sources = [firmware_source(), *sorted(model_dir.glob("*.c"))]
    build_dir = Path(build_dir) if build_dir is not None else model_dir / "build" / f"{board.id}-mlperf"
    return build_firmware(model_dir, mb, build_dir=build_dir, jobs=jobs, sources=sources)

