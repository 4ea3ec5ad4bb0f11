"""MEANet in `hilkit run`: the cloud tier on the host, and per-tier accounting (docs/meanet.md).

The board runs the edge model (main block, exit, gate, extension). For each test sample it answers
INFER with the edge's distribution, or OFFLOAD with the input it received; `Session.handle` then
runs the cloud model on that input here, as the cloud would, and records the tier, the gate's
score and the board's instruction count. `Session.metrics` compares the board's decisions with the
float32 reference's and accounts each tier's share, accuracy, latency and energy: board energy
(time x active power) plus the offloaded bytes x the link's energy per byte (board.toml
[link_energy]). `sweep` + `plot_pareto` give the threshold trade-off.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hilkit.models import meanet as M

from . import protocol as P
from .errors import UsageError

LINK_MODEL = ("edge energy per inference = board instructions x CPI / clock x active power, plus, for an "
              "offloaded input, the bytes of the OFFLOAD frame x the link's energy per byte; always-cloud = the "
              "same frame for every input with no counters and no computation. Not counted: delivering the input "
              "to the board (a sensor's job, the same in both cases), the answer's way back, the cloud's energy.")


class MeanetError(UsageError):
    """A MEANet run cannot start: no cloud model, or one that does not match the edge model."""


# ---------------------------------------------------------------- finding the models
def is_meanet(model_or_manifest) -> bool:
    """True for a MEANet edge model: a LoadedModel with a meanet_gate, or a `hilkit compile`
    manifest whose counters include the gate's."""
    if isinstance(model_or_manifest, dict):
        return any(str(n).endswith("." + M.COUNTERS[0]) for n in model_or_manifest.get("extra", []))
    return M.spec(model_or_manifest) is not None


def _sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def find_cloud(edge, *places) -> Path:
    """The cloud model file named in the edge model's meta, looked up beside each of `places`
    (model files or folders) and beside the edge model itself; its hash must match the meta's."""
    s = M.spec(edge)
    if s is None:
        raise MeanetError(f"model {edge.name!r} is not a MEANet edge model")
    if not s.cloud_file:
        raise MeanetError(f"model {edge.name!r} names no cloud model (meta.meanet.cloud)")
    dirs = []
    for p in [*places, edge.path]:
        if p is not None:
            p = Path(p)
            dirs.append(p if p.is_dir() else p.parent)
    for d in dirs:
        cand = d / s.cloud_file
        if cand.is_file():
            if s.cloud_hash and _sha16(cand) != s.cloud_hash:
                raise MeanetError(f"{cand} has hash {_sha16(cand)}, the edge model was trained with "
                                  f"{s.cloud_hash}: train both again with `hilkit train digits-meanet`")
            return cand
    raise MeanetError(f"cloud model {s.cloud_file} not found beside {', '.join(map(str, dirs))}: it is written "
                      "beside the edge model by `hilkit train digits-meanet`")


def attach_cloud(model_path, out_dir) -> Path | None:
    """Copy the cloud model of the edge model file `model_path` into a compiled directory, so that
    `hilkit run DIR` finds it. Returns the copy (None for an ordinary model)."""
    from hilkit.models import modelfile
    edge = modelfile.load(model_path)
    if M.spec(edge) is None:
        return None
    src = find_cloud(edge, model_path)
    dst = Path(out_dir) / src.name
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return dst


# ---------------------------------------------------------------- one run
@dataclass
class Sample:
    tier: int                  # the board's decision (its counter)
    ref_tier: int              # the reference's decision
    score: float               # the board's gate score (entropy or top probability)
    ref_score: float
    top: int                   # the board's main-exit top class
    outputs: np.ndarray        # the final answer: the board's, or the cloud's for an offload
    offload_bytes: int         # the OFFLOAD frame on the wire (0 when answered on the board)
    baseline_bytes: int        # the frame an always-cloud board would send for this input
    offload_frame: int         # the OFFLOAD frame this board would send for this input (counters included)
    cloud_seconds: float       # host time of the cloud model (0 when answered on the board)
    insns: int | None
    cycles: int
    offload_exact: bool | None  # the offloaded input is bit-identical to the one sent


def _baseline_payload(x: np.ndarray) -> tuple[int, bytes]:
    """The request encoding the Client uses for x (INFER8 when lossless), i.e. what an OFFLOAD carries."""
    code = P.encode_u8(x)
    if code is not None:
        return int(P.MsgType.INFER8), code
    return int(P.MsgType.INFER), np.asarray(x, "<f4").tobytes()


def frame_bytes(payload: bytes) -> int:
    """Bytes of an OFFLOAD frame on the wire (COBS, CRC and the 0x00 delimiter included)."""
    return len(P.encode_frame(P.MsgType.OFFLOAD, 0, payload))


class Session:
    """Runs the cloud tier for one `hilkit run` of a MEANet edge model and accounts the tiers.

    `edge`: the LoadedModel on the board; `board`: a Board; `cloud`: the cloud model file (found
    beside the edge model by default); `extra_names`: the manifest's counter names."""

    def __init__(self, edge, board, *, cloud=None, model_path=None, extra_names=None, runtime_kind="qemu-system"):
        from hilkit.models import modelfile
        from . import boards
        self.edge = edge
        self.spec = M.spec(edge)
        if self.spec is None:
            raise MeanetError(f"model {edge.name!r} is not a MEANet edge model")
        self.board = boards.get_board(board)
        cloud = cloud if cloud is not None else find_cloud(edge, *([model_path] if model_path else []))
        self.cloud = cloud if hasattr(cloud, "graph") else modelfile.load(cloud)
        names = list(extra_names or [])
        want = [f"{self.spec.gate}.{c}" for c in M.COUNTERS]
        self._idx = [names.index(w) for w in want] if all(w in names for w in want) else [0, 1, 2]
        self.runtime_kind = runtime_kind
        self.samples: list[Sample] = []
        self._ref: dict | None = None
        self._x: np.ndarray | None = None

    # -- the reference
    def reference(self, X) -> dict:
        """The reference pipeline for the batch X (kept for `handle`): tiers, scores, the edge's
        answers, the cloud's answers and the final answers."""
        from hilkit.models import reference
        X = np.asarray(X, np.float32)
        r = M.edge_reference(self.edge, X)
        flat = X.reshape(len(X), -1)
        r["cloud"] = reference.forward(self.cloud, flat.reshape((len(X),) + tuple(self.cloud.input_shape)))
        r["final"] = np.where((r["tier"] == M.TIER_CLOUD)[:, None], r["cloud"], r["edge"]).astype(np.float32)
        self._ref, self._x = r, flat
        return r

    def reference_outputs(self, X) -> np.ndarray:
        """What `hilkit run` compares the board's final answers with (edge or cloud, per the reference)."""
        return self.reference(X)["final"]

    # -- one sample
    def handle(self, x, result: P.InferResult, insns: int | None = None) -> np.ndarray:
        """Account one reply of the board for input x (the i-th of the batch given to `reference`,
        in order) and return the final answer: the board's outputs, or the cloud's on OFFLOAD."""
        from hilkit.models import reference
        if self._ref is None:
            raise RuntimeError("call reference(X) with the whole batch first")
        i = len(self.samples)
        x = np.asarray(x, np.float32).reshape(-1)
        if len(result.extra) < 3:
            raise P.ProtocolError(f"the board reported {len(result.extra)} counters; a MEANet model has the gate's 3")
        tier, score_bits, top = (int(result.extra[k]) for k in self._idx)
        score = float(np.array([score_bits], np.uint32).view(np.float32)[0])
        if (tier == M.TIER_CLOUD) != (result.offload is not None):
            raise P.ProtocolError(f"sample {i}: the board's tier counter says {M.TIERS[min(tier, 2)]} but it "
                                  f"answered {'OFFLOAD' if result.offload is not None else 'INFER'}")
        enc, data = _baseline_payload(x)
        baseline = frame_bytes(P.encode_offload_reply(enc, data))
        would = frame_bytes(P.encode_offload_reply(enc, data, result.cycles, result.extra))
        cloud_s, offload_bytes, exact = 0.0, 0, None
        if result.offload is not None:
            values = result.offload.values
            exact = bool(np.array_equal(values.view(np.uint32), x.view(np.uint32)))
            t0 = time.perf_counter()
            outputs = reference.forward(self.cloud, values.reshape((1,) + tuple(self.cloud.input_shape)))[0]
            cloud_s = time.perf_counter() - t0
            offload_bytes = frame_bytes(P.encode_offload_reply(result.offload.encoding, result.offload.data,
                                                               result.cycles, result.extra))
        else:
            outputs = result.outputs
        self.samples.append(Sample(tier, int(self._ref["tier"][i]), score, float(self._ref["score"][i]), top,
                                   np.asarray(outputs, np.float32), offload_bytes, baseline,
                                   offload_bytes or would, cloud_s, insns,
                                   int(result.cycles), exact))
        return self.samples[-1].outputs

    # -- accounting
    def _board_seconds(self, s: Sample) -> float | None:
        b = self.board
        if s.insns is not None:
            return s.insns * b.cpi / (b.clock_mhz * 1e6)
        if self.runtime_kind == "serial" and b.runtime == "bare-metal":
            return s.cycles / (b.clock_mhz * 1e6)
        return s.cycles * 1e-9 if s.cycles else None  # Linux and host targets report clock_gettime ns

    def links(self) -> dict:
        return dict(self.board.link_energy)

    def metrics(self, labels, link: str | None = None) -> dict:
        """The `hilkit run` JSON keys of a MEANet run (see docs/meanet.md), for the samples handled."""
        n = len(self.samples)
        if n == 0:
            raise ValueError("no samples handled")
        y = np.asarray(labels)[:n]
        links = self.links()
        link = link or ("uart" if "uart" in links else next(iter(links), None))
        if link is not None and link not in links:
            raise UsageError(f"board {self.board.id} has no '{link}' in [link_energy] (it has {', '.join(links)})")
        tiers = np.array([s.tier for s in self.samples])
        ref_tiers = np.array([s.ref_tier for s in self.samples])
        pred = np.array([int(np.argmax(s.outputs)) for s in self.samples])
        board_s = [self._board_seconds(s) for s in self.samples]
        power_w = (self.board.active_mw or 0.0) / 1000.0

        def cost(s: Sample, t_board, L) -> tuple[float, float, float]:
            """(latency s, board energy uJ, link energy uJ) of one sample over link L."""
            t = (t_board or 0.0) + (L.seconds(s.offload_bytes) + s.cloud_seconds if s.offload_bytes else 0.0)
            return t, (t_board or 0.0) * power_w * 1e6, L.energy_uj(s.offload_bytes) if L else 0.0

        by_link = {}
        for name, L in links.items():
            e = [sum(cost(s, tb, L)[1:]) for s, tb in zip(self.samples, board_s)]
            always = float(np.mean([L.energy_uj(s.baseline_bytes) for s in self.samples]))
            by_link[name] = {"mw": L.mw, "bps": L.bps, "bits_per_byte": L.bits_per_byte,
                             "nj_per_byte": round(L.nj_per_byte, 3), "energy_uj": float(np.mean(e)),
                             "energy_always_cloud_uj": always, "ratio": float(np.mean(e)) / always}
        L = links.get(link)
        per_tier = {}
        for k, name in enumerate(M.TIERS):
            idx = np.flatnonzero(tiers == k)
            rows = [cost(self.samples[i], board_s[i], L) for i in idx]
            insns = [self.samples[i].insns for i in idx if self.samples[i].insns is not None]
            per_tier[name] = {
                "count": int(len(idx)), "share": float(len(idx) / n),
                "accuracy": float(np.mean(pred[idx] == y[idx])) if len(idx) else None,
                "instructions": float(np.mean(insns)) if insns else None,
                "board_us": float(np.mean([board_s[i] or 0.0 for i in idx]) * 1e6) if len(idx) else None,
                "link_bytes": float(np.mean([self.samples[i].offload_bytes for i in idx])) if len(idx) else None,
                "link_us": float(np.mean([L.seconds(self.samples[i].offload_bytes) for i in idx]) * 1e6)
                if len(idx) and L else None,
                "cloud_us": float(np.mean([self.samples[i].cloud_seconds for i in idx]) * 1e6) if len(idx) else None,
                "latency_us": float(np.mean([r[0] for r in rows]) * 1e6) if rows else None,
                "energy_board_uj": float(np.mean([r[1] for r in rows])) if rows else None,
                "energy_link_uj": float(np.mean([r[2] for r in rows])) if rows else None,
                "energy_uj": float(np.mean([r[1] + r[2] for r in rows])) if rows else None,
            }
        all_rows = [cost(s, tb, L) for s, tb in zip(self.samples, board_s)]
        energy = float(np.mean([r[1] + r[2] for r in all_rows]))
        always = by_link[link]["energy_always_cloud_uj"] if L else None
        margin = np.abs(np.array([s.ref_score for s in self.samples]) - float(self.spec.threshold))
        closest = np.argsort(margin, kind="stable")[:5]
        ref = self._ref
        return {
            "tiers": {name: per_tier[name]["count"] for name in M.TIERS},
            "edge_fraction": float(np.mean(tiers != M.TIER_CLOUD)),
            "energy_always_cloud_uj": always,
            "decision_agreement": float(np.mean(tiers == ref_tiers)),
            "energy_uj": energy,
            "energy_source": f"estimate: board active power x (instructions x CPI / clock) + offloaded bytes x "
                             f"{link} energy per byte (board.toml link_energy)",
            "latency_us": float(np.mean([r[0] for r in all_rows]) * 1e6),
            "latency_source": f"estimate: board instructions x CPI / clock + {link} transfer of offloaded bytes "
                              "+ cloud model time on this host",
            "meanet": {
                "threshold": float(self.spec.threshold), "criterion": self.spec.criterion,
                "hard_classes": list(self.spec.hard), "link": link, "link_model": LINK_MODEL,
                "link_sources": list(self.board.link_energy_sources), "per_tier": per_tier,
                "energy_ratio": energy / always if always else None, "by_link": by_link,
                "cloud_alone_accuracy": float(np.mean(ref["cloud"][:n].argmax(1) == y)),
                "edge_alone_accuracy": float(np.mean(ref["edge"][:n].argmax(1) == y)),
                "reference_accuracy": float(np.mean(ref["final"][:n].argmax(1) == y)),
                "decision_disagreements": [int(i) for i in np.flatnonzero(tiers != ref_tiers)],
                "score_max_abs_diff": float(max(abs(s.score - s.ref_score) for s in self.samples)),
                "closest_to_threshold": [{"sample": int(i), "board_score": self.samples[i].score,
                                          "reference_score": self.samples[i].ref_score,
                                          "margin": float(margin[i])} for i in closest],
                "offloaded_inputs_exact": all(s.offload_exact for s in self.samples if s.offload_exact is not None),
                "cloud_time_source": "numpy cloud model on this host, wall clock",
            },
        }

    # -- what-if over thresholds
    def sweep(self, labels, thresholds=None, link: str | None = None) -> list[dict]:
        """Accuracy, edge share and energy per inference for other thresholds, from this run: the
        board's scores and top classes decide the tiers; the answers are the reference's (edge or
        cloud); a tier's cost is its measured mean (instructions, offload frame)."""
        n = len(self.samples)
        y = np.asarray(labels)[:n]
        links = self.links()
        link = link or ("uart" if "uart" in links else next(iter(links)))
        L = links[link]
        power_w = (self.board.active_mw or 0.0) / 1000.0
        score = np.array([s.score for s in self.samples])
        top = np.array([s.top for s in self.samples])
        tiers = np.array([s.tier for s in self.samples])
        t_board = np.array([self._board_seconds(s) or 0.0 for s in self.samples])
        # the main path (main and cloud tiers run up to the gate) and the extension path
        main_t = float(np.mean(t_board[tiers != M.TIER_EXTENSION])) if np.any(tiers != M.TIER_EXTENSION) else 0.0
        ext_t = float(np.mean(t_board[tiers == M.TIER_EXTENSION])) if np.any(tiers == M.TIER_EXTENSION) else main_t
        off_uj = np.array([L.energy_uj(s.offload_frame) for s in self.samples])
        hard = np.isin(top, self.spec.hard)
        edge_pred, cloud_pred = self._ref["edge"][:n].argmax(1), self._ref["cloud"][:n].argmax(1)
        main_pred = self._ref["probs"][:n].argmax(1)
        if thresholds is None:
            thresholds = (sorted({0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0,
                                  float(np.log(self.spec.n_classes)) + 0.01, float(self.spec.threshold)})
                          if self.spec.criterion == "entropy" else
                          sorted({0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01, float(self.spec.threshold)}))
        thresholds = sorted({float(np.float32(t)) for t in thresholds})  # as the board compares them
        always = float(np.mean([L.energy_uj(s.baseline_bytes) for s in self.samples]))
        out = []
        for t in thresholds:
            cloud = score > t if self.spec.criterion == "entropy" else score < t
            tier = np.where(cloud, M.TIER_CLOUD, np.where(hard, M.TIER_EXTENSION, M.TIER_MAIN))
            answer = np.where(tier == M.TIER_CLOUD, cloud_pred, np.where(tier == M.TIER_EXTENSION, edge_pred, main_pred))
            tb = np.where(tier == M.TIER_EXTENSION, ext_t, main_t)
            energy = tb * power_w * 1e6 + np.where(cloud, off_uj, 0.0)
            out.append({"threshold": float(t), "accuracy": float(np.mean(answer == y)),
                        "edge_fraction": float(np.mean(~cloud)), "energy_uj": float(np.mean(energy)),
                        "energy_ratio": float(np.mean(energy)) / always,
                        "chosen": bool(np.float32(t) == self.spec.threshold)})
        return out


def plot_pareto(sweep: list[dict], path, *, title: str, always_cloud: dict | None = None) -> Path:
    """Two panels: accuracy against energy per inference and against edge share, one point per
    threshold (the model's threshold circled); `always_cloud` = {"energy_uj", "accuracy"}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted(sweep, key=lambda r: r["energy_uj"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    acc = [100 * r["accuracy"] for r in pts]
    a.plot([r["energy_uj"] for r in pts], acc, "o-", label="MEANet thresholds")
    b.plot([100 * r["edge_fraction"] for r in pts], acc, "o-")
    for r in pts:
        a.annotate(f"{r['threshold']:.3g}", (r["energy_uj"], 100 * r["accuracy"]), fontsize=7,
                   textcoords="offset points", xytext=(3, 3))
        if r["chosen"]:
            a.plot(r["energy_uj"], 100 * r["accuracy"], "o", ms=12, mfc="none", mec="red", label="chosen threshold")
            b.plot(100 * r["edge_fraction"], 100 * r["accuracy"], "o", ms=12, mfc="none", mec="red")
    if always_cloud:
        a.plot(always_cloud["energy_uj"], 100 * always_cloud["accuracy"], "s", color="gray", label="always cloud")
    a.set_xlabel("energy per inference on the edge (uJ)")
    b.set_xlabel("inputs answered on the board (%)")
    for ax in (a, b):
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the whole run
def run(model, board, out_dir, manifest: dict, *, port=None, baud=None, limit=None, console=None,
        link: str | None = None, pareto_png=None) -> dict:
    """`hilkit run` for a MEANet edge model compiled into out_dir (run.prepare): the test split
    through the board, the cloud tier here, the report of run.run plus the MEANet keys."""
    from hilkit.models import data, modelfile

    from . import boards, report as rep, runner

    board = boards.get_board(board)
    edge = modelfile.load(Path(out_dir) / "model.npz")
    _, _, x_test, y_test = data.digits_split()
    x = x_test.reshape((-1,) + tuple(edge.shapes["input"])).astype(np.float32)
    if limit is not None:
        if limit < 1:
            raise UsageError("--limit must be at least 1")
        x, y_test = x[:limit], y_test[:limit]
    places = [p for p in (model, out_dir) if p is not None]
    image = Path(out_dir) / manifest["image"]
    outs, cycles, insns = [], [], []
    session = Session(edge, board, cloud=find_cloud(edge, *places), extra_names=manifest.get("extra"))
    ref = session.reference_outputs(x)
    with runner.start(board, image, port=port, baud=baud) as target:
        session.runtime_kind = target.kind
        client = P.Client(target.link)
        info = client.info()
        if info.get("model_hash") and info["model_hash"] != manifest["model_hash"]:
            raise UsageError(f"the board runs model {info['model_hash']}, not {manifest['model_hash']}: flash it first")
        with rep.progress(console, f"{manifest['model']} on {board.id} (MEANet)", len(x)) as advance:
            for i in range(len(x)):
                r = client.infer(x[i].ravel())
                counts = target.instruction_counts()
                n_insn = counts[-1] if counts else None
                if n_insn is not None:
                    insns.append(n_insn)
                cycles.append(r.cycles)
                outs.append(session.handle(x[i], r, insns=n_insn))
                advance()
    report = rep.make_report(manifest, board, np.stack(outs), ref, y_test, cycles=cycles, insns=insns,
                             image=image, runtime_kind=target.kind)
    report.update(session.metrics(y_test, link=link))
    sweep = session.sweep(y_test, link=report["meanet"]["link"])
    report["meanet"]["sweep"] = sweep
    if pareto_png is not None:
        always = {"energy_uj": report["energy_always_cloud_uj"], "accuracy": report["meanet"]["cloud_alone_accuracy"]}
        plot_pareto(sweep, pareto_png, always_cloud=always,
                    title=f"{manifest['model']} on {board.id}: threshold sweep ({report['meanet']['link']} link)")
        report["meanet"]["pareto_png"] = str(pareto_png)
    return report


def print_tiers(r: dict, console) -> None:
    """The per-tier table of a MEANet report."""
    from rich.table import Table
    m = r["meanet"]
    t = Table(title=f"MEANet tiers ({m['criterion']} threshold {m['threshold']:g}, link {m['link']}; "
                    f"decision agreement {r['decision_agreement'] * 100:.2f} %)")
    for col in ("tier", "share", "accuracy", "instructions", "board us", "link bytes", "link us", "cloud us",
                "latency us", "energy uJ"):
        t.add_column(col, justify="left" if col == "tier" else "right")

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    for name, row in m["per_tier"].items():
        t.add_row(name, f"{row['share'] * 100:.1f} %", f(row["accuracy"] and row["accuracy"] * 100, ".2f"),
                  f(row["instructions"], ",.0f"), f(row["board_us"], ",.1f"), f(row["link_bytes"], ".0f"),
                  f(row["link_us"], ",.0f"), f(row["cloud_us"], ",.0f"), f(row["latency_us"], ",.1f"),
                  f(row["energy_uj"], ",.2f"))
    t.add_row("all", "100 %", f"{r['accuracy'] * 100:.2f}", f(r["instructions_per_inference"], ",.0f"), "", "", "",
              "", f(r["latency_us"], ",.1f"), f(r["energy_uj"], ",.2f"))
    t.add_row("always cloud", "", f"{m['cloud_alone_accuracy'] * 100:.2f}", "", "", "", "", "", "",
              f(r["energy_always_cloud_uj"], ",.2f"))
    console.print(t)


def main(argv=None) -> int:
    """`python -m hilkit.host.meanet MODEL.npz --board B [--limit N] [--link L] [--json OUT] [--plot PNG]`:
    what `hilkit run` does for a MEANet model, until the CLI calls `run` itself."""
    import argparse
    import json

    from rich.console import Console

    from . import run as hk_run
    ap = argparse.ArgumentParser(prog="python -m hilkit.host.meanet", description=main.__doc__)
    ap.add_argument("model")
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--link", help="uart, ble or wifi (default: uart where the board has one)")
    ap.add_argument("--json")
    ap.add_argument("--plot", help="write the threshold sweep's Pareto plot (PNG)")
    ap.add_argument("--workdir", default=str(hk_run.CACHE))
    a = ap.parse_args(argv)
    out_dir, man = hk_run.prepare(a.model, a.board, "libm", Path(a.workdir))
    if not is_meanet(man):
        raise UsageError(f"{a.model} is not a MEANet edge model: use `hilkit run`")
    console = Console(stderr=True)
    r = run(a.model, a.board, out_dir, man, limit=a.limit, console=console, link=a.link, pareto_png=a.plot)
    out = Console(width=150)  # the tier table is wide; a pipe would get 80 columns
    hk_run.print_report(r, out)
    print_tiers(r, out)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0 if r["decision_agreement"] == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
