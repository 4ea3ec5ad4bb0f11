"""MEANet (docs/meanet.md): the gate and merge math, the model file, the generated C against the
reference (decisions, scores, answers) with strict warnings on every board's compiler, the OFFLOAD
reply (golden bytes from the real firmware over a pipe), the link-energy tables, and the
accounting of a whole run on the host board."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.host import boards, meanet as HM, protocol as P
from hilkit.host.link import PipeLink
from hilkit.models import data, meanet as M, modelfile, reference
from helpers import CROSS, ROOT, SANITIZE, STRICT, have, run_cc

sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
import protobuild as pb  # noqa: E402


@pytest.fixture(scope="module")
def meanet_model(tmp_path_factory):
    """digits-meanet trained briefly (2 epochs per network): the edge and cloud model files."""
    from hilkit.models import recipes
    d = tmp_path_factory.mktemp("meanet")
    summary = recipes.RECIPES["digits-meanet"](d / "dm.npz", epochs=2)
    return d / "dm.npz", Path(summary["cloud_path"]), summary


# ------------------------------------------------------------------ the decision math
def test_softmax_and_entropy_follow_their_definitions(rng):
    z = (rng.normal(size=(500, 10)) * 4).astype(np.float32)
    z[0] = 0                       # uniform: entropy ln 10
    z[1] = [80] + [-80] * 9        # one-hot: entropy 0 (the others underflow to p = 0)
    p = M.softmax_f32(z)
    z64 = z.astype(np.float64)
    p64 = np.exp(z64 - z64.max(1, keepdims=True))
    p64 /= p64.sum(1, keepdims=True)
    assert p.dtype == np.float32 and np.max(np.abs(p - p64)) < 1e-6
    h = M.entropy_f32(p)
    h64 = -(p64 * np.log(np.where(p64 > 0, p64, 1))).sum(1)
    assert np.max(np.abs(h - h64)) < 2e-6
    assert h[0] == pytest.approx(np.log(10), abs=1e-6) and h[1] == 0.0


def test_gate_tiers_and_merge():
    hard = (1, 3)
    z = np.array([[5, 0, 0, 0], [0, 5, 0, 0], [0, 0, 0, 0], [0, 0.1, 0, 0]], np.float32)
    p, tier, score, top = M.gate(z, hard, 0.8)
    assert list(top) == [0, 1, 0, 1]
    assert list(tier) == [M.TIER_MAIN, M.TIER_EXTENSION, M.TIER_CLOUD, M.TIER_CLOUD]
    _, tier_c, score_c, _ = M.gate(z, hard, 0.5, "confidence")
    assert list(tier_c) == [M.TIER_MAIN, M.TIER_EXTENSION, M.TIER_CLOUD, M.TIER_CLOUD]
    assert np.allclose(score_c, p.max(1))
    ext = np.array([[0, 0], [2, -2], [0, 0], [-1, 1]], np.float32)
    y = M.merge(p, ext, hard)
    assert np.array_equal(y[0], p[0]) and np.array_equal(y[2], p[2])   # easy top: p unchanged
    for i in (1, 3):                                                  # hard top: mass split by the extension
        assert y[i].sum() == pytest.approx(1, abs=1e-6)
        assert np.array_equal(y[i, [0, 2]], p[i, [0, 2]])
        q = np.exp(ext[i]) / np.exp(ext[i]).sum()
        assert np.allclose(y[i, [1, 3]], (p[i, 1] + p[i, 3]) * q, atol=1e-7)
    with pytest.raises(ValueError, match="criterion"):
        M.gate(z, hard, 0.8, "margin")


@pytest.mark.parametrize("text,ok", [("1,3", True), ("0", True), ("3,1", False), ("1,1", False), ("", False),
                                     ("0,1,2,3", False), ("4", False), ("a", False)])
def test_parse_hard(text, ok):
    if ok:
        assert M.format_hard(M.parse_hard(text, 4)) == text
    else:
        with pytest.raises(ValueError):
            M.parse_hard(text, 4)


def _tiny_graph(hard="1,2", ext_units=2, gate_input_units=4):
    b = M.GraphBuilder((3,))
    rng = np.random.default_rng(0)
    z = b.add("dense", ["input"], {"units": gate_input_units},
              {"weight": rng.normal(size=(gate_input_units, 3)), "bias": np.zeros(gate_input_units)}, name="exit")
    g = b.add("meanet_gate", [z], {"hard": hard}, {"threshold": np.array([0.8])}, name="gate")
    e = b.add("dense", ["input"], {"units": ext_units}, {"weight": rng.normal(size=(ext_units, 3)),
                                                         "bias": np.zeros(ext_units)}, name="ext")
    out = b.add("meanet_merge", [g, e], {"hard": hard}, name="merge")
    return b.graph(name="tiny", output=out)


def test_model_file_validates_meanet_layers(tmp_path):
    m = modelfile.save(tmp_path / "t.npz", *_tiny_graph())
    s = M.spec(m)
    assert (s.gate, s.merge, s.exit, s.hard, s.criterion, s.n_classes) == ("gate", "merge", "exit", (1, 2), "entropy", 4)
    assert s.threshold == np.float32(0.8)
    x = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    r = M.edge_reference(m, x)
    assert r["edge"].shape == (50, 4) and set(np.unique(r["tier"])) <= {0, 1, 2}
    for graph, arrays, complaint in [(*_tiny_graph(hard="1,7"), "hard classes"),
                                     (*_tiny_graph(ext_units=3), "3 logits for 2 hard"),
                                     (*_tiny_graph(hard="0,1,2,3"), "hard classes")]:
        with pytest.raises(modelfile.ModelFileError, match=complaint):
            modelfile.save(tmp_path / "bad.npz", graph, arrays)
    assert not (tmp_path / "bad.npz").exists()
    graph, arrays = _tiny_graph()
    graph["layers"][1]["attrs"]["criterion"] = "vibes"
    with pytest.raises(modelfile.ModelFileError, match="criterion"):
        modelfile.validate(graph, arrays)
    out = M.with_threshold(tmp_path / "t.npz", 0.25, tmp_path / "t2.npz", criterion="confidence")
    s2 = M.spec(out)
    assert s2.threshold == np.float32(0.25) and s2.criterion == "confidence"


# ------------------------------------------------------------------ the recipe
def test_recipe_writes_edge_and_cloud(meanet_model):
    edge_path, cloud_path, summary = meanet_model
    edge = modelfile.load(edge_path)
    s = M.spec(edge)
    meta = edge.graph["meta"]["meanet"]
    assert cloud_path == edge_path.with_name("dm.cloud.npz") and s.cloud_file == cloud_path.name
    assert s.cloud_hash == modelfile.load(cloud_path).hash == summary["cloud_hash"]
    assert len(s.hard) == 5 and s.threshold == np.float32(M.PAPER_ENTROPY_THRESHOLD)
    # hard = the five classes with the lowest validation accuracy of the main exit
    acc = np.array(meta["val_class_accuracy"])
    assert sorted(s.hard) == sorted(np.argsort(acc, kind="stable")[:5].tolist())
    assert max(acc[list(s.hard)]) <= min(np.delete(acc, list(s.hard)))
    t = summary["test"]
    assert sum(t["tiers"].values()) == 360 and edge.graph["meta"]["test_accuracy"] == round(t["accuracy"], 6)
    assert [layer["op"] for layer in edge.layers][-1] == "meanet_merge" and edge.input_shape == (64,)


def test_recipe_is_deterministic(tmp_path):
    a = M.recipe(tmp_path / "a.npz", epochs=1, seed=3)
    b = M.recipe(tmp_path / "b.npz", epochs=1, seed=3)
    assert a["cloud_hash"] == b["cloud_hash"] and a["hard_classes"] == b["hard_classes"]
    ga, gb = modelfile.load(tmp_path / "a.npz").graph, modelfile.load(tmp_path / "b.npz").graph
    assert ga["meta"]["meanet"].pop("cloud") == "a.cloud.npz" and gb["meta"]["meanet"].pop("cloud") == "b.cloud.npz"
    assert ga["layers"] == gb["layers"] and ga["meta"] == gb["meta"]


# ------------------------------------------------------------------ generated C vs the reference
DRIVER = r"""
/* Reads float32 inputs from stdin; per input writes rc:i32, the gate's 3 counters, n_out float32. */
#include <stdio.h>
#include <string.h>
#include "hk_model.h"

int main(void)
{
    static float in[HK_MODEL_N_IN], out[HK_MODEL_N_OUT];
    uint32_t extra[HK_MODEL_N_EXTRA];
    while (fread(in, sizeof in[0], HK_MODEL_N_IN, stdin) == HK_MODEL_N_IN) {
        int32_t rc;
        memset(out, 0, sizeof out);
        rc = hk_model_infer(in, out);
        hk_model_extra(extra);
        if (fwrite(&rc, sizeof rc, 1, stdout) != 1 || fwrite(extra, sizeof extra[0], 3, stdout) != 3 ||
            fwrite(out, sizeof out[0], HK_MODEL_N_OUT, stdout) != HK_MODEL_N_OUT) {
            return 4;
        }
    }
    return 0;
}
"""


def _inc(gen_dir):
    return [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen_dir}"]


@pytest.mark.parametrize("sanitize,criterion", [(False, "entropy"), (True, "entropy"), (False, "confidence")],
                         ids=["O2", "asan-ubsan", "O2-confidence"])
def test_generated_c_decides_like_the_reference(meanet_model, tmp_path, sanitize, criterion):
    edge_path, _, _ = meanet_model
    if criterion == "confidence":
        edge_path = M.with_threshold(edge_path, 0.9, tmp_path / "conf.npz", criterion="confidence").path
    g = generate(edge_path, "host", tmp_path / "gen")
    assert g.extra_names == [f"gate.{c}" for c in M.COUNTERS]
    src = (tmp_path / "gen" / "model.c").read_text()
    assert "return HK_MODEL_OFFLOAD;" in src and "hk_meanet_merge_f32(" in src
    (tmp_path / "drv.c").write_text(DRIVER)
    run_cc(["gcc", *STRICT, *(SANITIZE if sanitize else ["-O2"]), *_inc(tmp_path / "gen"),
            str(tmp_path / "gen" / "model.c"), str(tmp_path / "drv.c"), "-o", str(tmp_path / "drv"), "-lm"])
    _, _, x, _ = data.digits_split()
    p = subprocess.run([str(tmp_path / "drv")], input=x.astype(np.float32).tobytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    rec = np.frombuffer(p.stdout, dtype=[("rc", "<i4"), ("extra", "<u4", 3), ("out", "<f4", 10)])
    assert len(rec) == 360
    edge = modelfile.load(edge_path)
    r = M.edge_reference(edge, x)
    tier = rec["extra"][:, 0].astype(np.int64)
    assert np.array_equal(tier, r["tier"]), "every decision must equal the reference's"
    assert np.array_equal(rec["rc"] == 0x4F46, tier == M.TIER_CLOUD) and set(rec["rc"]) <= {0, 0x4F46}
    assert np.array_equal(rec["extra"][:, 2], r["top"])
    score = rec["extra"][:, 1].astype(np.uint32).view(np.float32)
    assert np.max(np.abs(score - r["score"])) < 1e-5
    local = tier != M.TIER_CLOUD
    assert np.max(np.abs(rec["out"][local] - r["edge"][local])) < 1e-5
    assert np.array_equal(rec["out"][local].argmax(1), r["edge"][local].argmax(1))
    assert np.all(rec["out"][~local] == 0), "an offloaded inference writes no answer"
    assert np.count_nonzero(tier == M.TIER_EXTENSION) > 0 and np.count_nonzero(tier == M.TIER_MAIN) > 0


@pytest.mark.parametrize("board", sorted(CROSS))
def test_generated_c_compiles_without_warnings(meanet_model, board, tmp_path):
    cc, *flags = CROSS[board]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    generate(meanet_model[0], board, tmp_path)
    for opt in ("-O0", "-O2"):
        run_cc([cc, *flags, *STRICT, opt, *_inc(tmp_path), "-c", str(tmp_path / "model.c"), "-o", str(tmp_path / "m.o")])


KERNEL_TU = r"""
#include "hk_meanet.h"
int meanet_tu(const float *z, float *p, const float *ext, float *y, uint32_t *c);
int meanet_tu(const float *z, float *p, const float *ext, float *y, uint32_t *c)
{
    static const uint8_t mask[4] = {0u, 1u, 0u, 1u};
    static const uint16_t idx[2] = {1u, 3u};
    int t = hk_meanet_gate_f32(z, p, 4, mask, 0.8f, HK_MEANET_ENTROPY, c);
    t += hk_meanet_gate_f32(z, p, 4, mask, 0.5f, HK_MEANET_CONFIDENCE, c);
    hk_meanet_merge_f32(p, ext, idx, 2, 4, y);
    return t;
}
"""


@pytest.mark.parametrize("board", sorted(CROSS))
def test_kernel_header_compiles_without_warnings(board, tmp_path):
    cc, *flags = CROSS[board]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    (tmp_path / "k.c").write_text(KERNEL_TU)
    for opt in ("-O0", "-O2", "-Os"):
        run_cc([cc, *flags, *STRICT, opt, f"-I{resource_dir('kernels_c')}", "-c", str(tmp_path / "k.c"),
                "-o", str(tmp_path / "k.o")])


# ------------------------------------------------------------------ the OFFLOAD reply
OFFLOAD_MODEL_H = """#ifndef MODEL_H
#define MODEL_H
#define HK_MODEL_NAME "offload-test"
#define HK_MODEL_HASH "0ff10ad0ff10ad00"
#define HK_FW_VERSION "0.1.0"
#define HK_MODEL_N_IN 4
#define HK_MODEL_N_OUT 2
#define HK_MODEL_IN_RANK 1
#define HK_MODEL_IN_DIMS {4}
#define HK_MODEL_OUT_RANK 1
#define HK_MODEL_OUT_DIMS {2}
#define HK_MODEL_N_EXTRA 1
#define MODEL_ARENA_BYTES 0
#endif
"""
OFFLOAD_MODEL_C = """/* Offloads when in[0] < 0; extra[0] counts the calls. */
#include "hk_model.h"
static uint32_t g_calls;
int hk_model_infer(const float *in, float *out)
{
    g_calls++;
    if (in[0] < 0.0f) {
        return HK_MODEL_OFFLOAD;
    }
    out[0] = in[0] + in[1];
    out[1] = in[2] - in[3];
    return 0;
}
int hk_model_extra(uint32_t *extra)
{
    extra[0] = g_calls;
    return HK_MODEL_N_EXTRA;
}
"""


def test_offload_reply_layout_by_hand():
    p = P.encode_offload_reply(P.MsgType.INFER8, b"\x00\x00\x80\xbf\x00\x00\x00\x3f\x00\x03\x02\x04",
                               cycles=0x0102, extra=[7])
    assert p == (struct.pack("<QB", 0x0102, 1) + struct.pack("<I", 7) + b"\x04"
                 + b"\x00\x00\x80\xbf\x00\x00\x00\x3f\x00\x03\x02\x04")
    r = P.decode_offload(p, 4)
    assert r.outputs.size == 0 and r.cycles == 0x0102 and r.extra == [7]
    assert r.offload.encoding == P.MsgType.INFER8 and r.offload.values.tolist() == [-1.0, 0.5, 0.0, 1.0]
    f32 = np.array([1.5, -2, 3e-9, 7], np.float32)
    r = P.decode_offload(P.encode_offload_reply(P.MsgType.INFER, f32.tobytes()), 4)
    assert np.array_equal(r.offload.values, f32)
    assert P.MsgType.OFFLOAD == 0x85 and HM.frame_bytes(p) == len(P.encode_frame(0x85, 9, p))


@pytest.mark.parametrize("payload,match", [
    (b"\x00" * 5, "truncated"),
    (P.encode_offload_reply(P.MsgType.INFER8, bytes(11)), "expected an INFER"),
    (P.encode_offload_reply(P.MsgType.INFER, bytes(12)), "expected an INFER"),
    (P.encode_offload_reply(P.MsgType.BENCH, bytes(16)), "encoding 0x03"),
    (P.encode_offload_reply(P.MsgType.INFER, np.array([1, np.nan, 0, 0], np.float32).tobytes()), "non-finite"),
])
def test_offload_reply_rejects_malformed(payload, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.decode_offload(payload, 4)


@pytest.fixture(scope="module")
def offload_fw(tmp_path_factory):
    d = tmp_path_factory.mktemp("offload")
    (d / "model.h").write_text(OFFLOAD_MODEL_H)
    (d / "model.c").write_text(OFFLOAD_MODEL_C)
    exe = d / "fw"
    run_cc(["gcc", *STRICT, "-O2", '-DHK_BOARD_ID="offload-test"', f"-I{pb.FIRMWARE}", f"-I{d}", "-o", str(exe),
            str(pb.FIRMWARE / "main.c"), str(pb.FIRMWARE / "hk_proto.c"),
            str(ROOT / "boards" / "common" / "board_linux.c"), str(d / "model.c")])
    return exe


def _raw_reply(lk, frame: bytes) -> bytes:
    import time
    lk.write(b"\x00" + frame)
    buf, deadline = b"", time.monotonic() + 5
    while time.monotonic() < deadline and not buf.endswith(b"\x00"):
        buf += lk.read(4096, deadline - time.monotonic())
    return buf


def test_firmware_offload_golden_bytes(offload_fw):
    lk = PipeLink.spawn([offload_fw])
    try:
        c = P.Client(lk, timeout=2.0)
        assert c.info()["model_hash"] == "0ff10ad0ff10ad00"
        ok = c.infer([1, 2, 3, 4])                          # answered: INFER8 reply as before
        assert ok.offload is None and ok.outputs.tolist() == [3.0, -1.0] and ok.extra == [1]
        x = np.array([-1, 0.5, 0, 1], np.float32)           # offloaded, sent as INFER8
        r = c.infer(x)
        assert r.offload is not None and r.outputs.size == 0 and r.extra == [2]
        assert r.offload.encoding == P.MsgType.INFER8 and r.offload.data == P.encode_u8(x)
        assert np.array_equal(r.offload.values, x)
        y = np.array([-1.1, 0.3, 2.7, np.pi], np.float32)  # not on an 8-bit grid: INFER, 16 bytes back
        r = c.infer(y)
        assert r.offload.encoding == P.MsgType.INFER and r.offload.data == y.tobytes()
        assert r.offload.values.view(np.uint32).tolist() == y.view(np.uint32).tolist()
        b = c.bench(10)                                     # BENCH reruns the offloaded input: no error
        assert b["reps"] == 10
        # golden bytes: the firmware's frame equals the Python encoder's, and a duplicate gets the same bytes
        req = P.encode_frame(P.MsgType.INFER8, 200, P.encode_u8(x))
        raw = _raw_reply(lk, req)
        f = P.decode_frame(raw[:-1])
        assert f.type == 0x85 and f.seq == 200
        cycles = struct.unpack_from("<Q", f.payload)[0]
        assert raw == P.encode_frame(0x85, 200, P.encode_offload_reply(P.MsgType.INFER8, P.encode_u8(x), cycles, [14]))
        assert _raw_reply(lk, req) == raw, "a retransmission gets the stored OFFLOAD reply"
        assert c.infer([1, 1, 1, 1]).extra == [15], "the duplicate was not recomputed"
    finally:
        lk.close()
    assert lk.returncode == 0, lk.stderr_text


def test_client_takes_offload_only_as_an_infer_reply():
    from test_protocol import INFO, ScriptedLink, reply
    off = P.encode_offload_reply(P.MsgType.INFER8, P.encode_u8(np.array([0, 1, 2, 3], np.float32)), 5, [1])
    lk = ScriptedLink(lambda f: reply(f, INFO) if f.type == P.MsgType.INFO else reply(f, off, mtype=0x85))
    c = P.Client(lk, timeout=0.5)
    r = c.infer([0, 1, 2, 3])
    assert r.offload is not None and r.offload.values.tolist() == [0, 1, 2, 3] and c.last_reply_type == 0x85
    with pytest.raises(P.ProtocolError, match="message type 0x85"):
        c.bench(3)
    bad = ScriptedLink(lambda f: reply(f, INFO) if f.type == P.MsgType.INFO else reply(f, off[:-1], mtype=0x85))
    with pytest.raises(P.ProtocolError, match="OFFLOAD reply"):
        P.Client(bad, timeout=0.5).infer([0, 1, 2, 3])


# ------------------------------------------------------------------ link energy in board.toml
def test_every_board_has_cited_link_energy():
    for b in boards.list_boards():
        assert {"ble", "wifi"} <= set(b.link_energy), b.id
        assert len(b.link_energy_sources) >= 2 and all(len(s) > 30 for s in b.link_energy_sources), b.id
        if b.baud > 0:
            u = b.link_energy["uart"]
            assert u.bits_per_byte == 10 and u.bps == b.baud and u.mw == b.active_mw, b.id
            assert u.nj_per_byte == pytest.approx(b.active_mw * 10 / b.baud * 1e6)
        assert b.link_energy["ble"].nj_per_byte == pytest.approx(1536.0)
        assert b.link_energy["wifi"].nj_per_byte == pytest.approx(6336.0)
        assert "link_energy" in b.summary()
    u = boards.get_board("mps2-an386").link_energy["uart"]
    assert u.seconds(115.2) == pytest.approx(0.01) and u.energy_uj(100) == pytest.approx(86.80555, rel=1e-5)


@pytest.mark.parametrize("edit,complaint", [
    (lambda s: s.replace("ble_bps = 100000\n", ""), "'ble_mw' needs 'ble_bps'"),
    (lambda s: s.replace("wifi_mw = 792.0", "wifi_mw = -1"), "positive"),
    (lambda s: s.replace("wifi_mw = 792.0", "wifi_mj = 1"), "unknown key 'wifi_mj'"),
    (lambda s: s.replace("sources = [\n  \"uart", "nosources = [\n  \"uart"), "unknown key"),
])
def test_bad_link_energy_is_rejected(tmp_path, edit, complaint):
    src = ROOT / "boards" / "mps2-an386"
    d = tmp_path / "boards" / "mps2-an386"
    d.mkdir(parents=True)
    (d / "board.toml").write_text(edit((src / "board.toml").read_text()))
    (d / "link.ld").write_text((src / "link.ld").read_text())
    (tmp_path / "boards" / "common").symlink_to(ROOT / "boards" / "common")
    with pytest.raises(boards.BoardError, match=complaint):
        boards.parse_board(d / "board.toml")


# ------------------------------------------------------------------ a whole run on the host board
def test_cloud_model_is_found_and_checked(meanet_model, tmp_path):
    edge_path, cloud_path, _ = meanet_model
    edge = modelfile.load(edge_path)
    assert HM.is_meanet(edge) and not HM.is_meanet({"extra": []})
    assert HM.find_cloud(edge) == cloud_path
    out = tmp_path / "compiled"
    out.mkdir()
    (out / "model.npz").write_bytes(edge_path.read_bytes())
    copy = HM.attach_cloud(edge_path, out)
    assert copy == out / cloud_path.name and HM.find_cloud(modelfile.load(out / "model.npz")) == copy
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x01")
    with pytest.raises(HM.MeanetError, match="hash"):
        HM.find_cloud(modelfile.load(out / "model.npz"))
    copy.unlink()
    with pytest.raises(HM.MeanetError, match="not found"):
        HM.find_cloud(modelfile.load(out / "model.npz"))


def test_run_on_the_host_board(meanet_model, tmp_path):
    from hilkit.host import run as R
    edge_path, _, _ = meanet_model
    out_dir, man = R.prepare(edge_path, "host", "libm", tmp_path)
    assert HM.is_meanet(man)
    png = tmp_path / "pareto.png"
    r = HM.run(edge_path, "host", out_dir, man, limit=120, pareto_png=png)
    assert r["samples"] == 120 and r["decision_agreement"] == 1.0
    assert sum(r["tiers"].values()) == 120 and r["tiers"]["cloud"] > 0
    assert r["edge_fraction"] == pytest.approx(1 - r["tiers"]["cloud"] / 120)
    assert r["top1_agreement"] == 1.0 and r["max_abs_diff"] < 1e-5 and r["accuracy"] == r["reference_accuracy"]
    m = r["meanet"]
    assert m["link"] == "ble" and m["offloaded_inputs_exact"] and m["decision_disagreements"] == []
    cloud = m["per_tier"]["cloud"]
    assert cloud["link_bytes"] == HM.frame_bytes(P.encode_offload_reply(4, bytes(72), 1, [2, 0, 0]))
    assert r["energy_always_cloud_uj"] == pytest.approx(
        HM.frame_bytes(P.encode_offload_reply(4, bytes(72))) * 1536.0e-3)
    assert m["per_tier"]["edge_main"]["link_bytes"] == 0 and m["per_tier"]["edge_main"]["energy_link_uj"] == 0
    shares = sum(t["share"] for t in m["per_tier"].values())
    assert shares == pytest.approx(1.0)
    chosen = [s for s in m["sweep"] if s["chosen"]]
    assert len(chosen) == 1 and chosen[0]["edge_fraction"] == pytest.approx(r["edge_fraction"])
    assert chosen[0]["accuracy"] == pytest.approx(r["accuracy"])
    fr = [s["edge_fraction"] for s in sorted(m["sweep"], key=lambda s: s["threshold"])]
    assert fr == sorted(fr) and fr[-1] == 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(r)  # the report is JSON as it is
