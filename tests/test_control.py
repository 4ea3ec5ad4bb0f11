"""The closed loop (`hilkit control`): CartPole-v1 on the host, an lsm_policy on the board, the same
episodes with the numpy policy; a retransmitted STEP does not step the reservoir twice; the CLI's
report and exit codes. The host board runs everything here; test_control_qemu.py runs mps2-an386."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from hilkit.host import cli, control, protocol, runner
from hilkit.host.compile import compile_model
from hilkit.models import modelfile, reservoir
from test_reservoir import SMALL, random_policy

pytest.importorskip("gymnasium")

KEYS = {"episodes", "mean_return", "min_return", "action_agreement", "instructions_per_step",
        "trainable_parameters", "reservoir_neurons", "link_round_trips", "returns", "reference_returns",
        "outputs_identical", "counters_identical", "control_rate_hz", "link_rate_hz", "step_us"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A random CartPole-shaped policy (4 observations, 2 actions) on the small reservoir."""
    return random_policy(tmp_path_factory.mktemp("policy"), SMALL, n_obs=4, hidden=8, actions=2, seed=5,
                         name="cartpole-small")


@pytest.fixture(scope="module")
def compiled(policy, tmp_path_factory):
    return compile_model(policy, "host", tmp_path_factory.mktemp("host") / "build")


def test_control_on_the_host_board_agrees_with_the_numpy_policy(compiled, tmp_path):
    r = control.control(compiled.out_dir, "host", episodes=4, seed=3, workdir=tmp_path)
    assert KEYS <= set(r)
    assert r["episodes"] == 4 and r["steps"] == sum(r["returns"]) > 4
    assert r["action_agreement"] == 1.0 and r["outputs_identical"] and r["counters_identical"]
    assert r["returns"] == r["reference_returns"] and r["returns_identical"]
    assert r["mean_return"] == pytest.approx(np.mean(r["returns"])) and r["min_return"] == min(r["returns"])
    assert r["link_round_trips"] == r["steps"] + 1          # INFO, then one STEP per environment step
    assert r["trainable_parameters"] == 8 * 32 + 8 + 2 * 8 + 2 and r["reservoir_neurons"] == 40
    assert r["instructions_per_step"] is None and r["runtime"] == "host"
    assert r["step_source"] == "clock_gettime (median)" and r["step_us"] > 0 and r["control_rate_hz"] > 0
    assert r["spikes_per_step"] > 0 and r["synops_per_step"] > r["spikes_per_step"]


def test_a_retransmitted_step_is_answered_without_stepping_again(compiled):
    """The device replays its stored reply for a repeated (seq, CRC): the reservoir steps once."""
    m = modelfile.load(compiled.out_dir / "model.npz")
    node = m.layers[0]
    x = np.random.default_rng(0).normal(0, 0.5, (4, 5)).astype(np.float32)
    x[:, -1] = [1, 0, 0, 0]
    want, _ = reservoir.simulate(node["attrs"], m.params(node), x)
    with runner.start("host", compiled.out_dir / compiled.manifest["image"]) as target:
        client = protocol.Client(target.link)
        client.info()
        got = [client.infer(x[0]).outputs]
        frame = b"\x00" + protocol.encode_frame(protocol.MsgType.INFER, 77, x[1].astype("<f4").tobytes())
        replies = []
        for _ in range(2):                                 # the request, then its retransmission
            target.link.write(frame)
            buf = b""
            while buf.count(b"\x00") < 1:
                buf += target.link.read(4096, 2.0)
            replies.append(protocol.decode_frame(buf[:buf.index(b"\x00")]))
        assert replies[0] == replies[1]
        got.append(protocol.decode_infer(replies[0].payload, 2).outputs)
        client._seq = 100
        got += [client.infer(x[2]).outputs, client.infer(x[3]).outputs]
    assert np.array_equal(np.asarray(got, np.float32).view(np.uint32), want.view(np.uint32))


def test_cli_control_writes_the_report(compiled, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = cli.main(["control", str(compiled.out_dir), "--board", "host", "--episodes", "2", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["episodes"] == 2 and r["action_agreement"] == 1.0
    assert "action agreement" in capsys.readouterr().out


def test_cli_control_refuses_bad_input(tmp_path, capsys, compiled):
    assert cli.main(["control", str(tmp_path / "missing.npz"), "--board", "host"]) == 2
    assert "cannot read model file" in capsys.readouterr().err
    # a classifier is not a policy
    from hilkit.models.recipes import RECIPES
    RECIPES["digits-mlp"](tmp_path / "mlp.npz", epochs=1)
    assert cli.main(["control", str(tmp_path / "mlp.npz"), "--board", "host"]) == 2
    assert "lsm_policy" in capsys.readouterr().err
    # a policy for another environment
    assert cli.main(["control", str(compiled.out_dir), "--board", "host", "--env", "Acrobot-v1"]) == 2
    assert "observations" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["control", str(compiled.out_dir), "--episodes", "0"])
    assert e.value.code == 2


def test_frame_sizes_and_link_rate():
    req, rep = control._frame_bytes(5, 2, 5)
    # 5 float32 in; u64 cycles, u8 n_extra, 5 u32 counters, 2 float32 out; + type, seq, crc, COBS, 0x00
    assert req == 1 + 2 + 4 * 5 + 4 + 2 and rep == 8 + 1 + 4 * 5 + 4 * 2 + 2 + 4 + 2
    assert struct.calcsize("<Q") == 8
