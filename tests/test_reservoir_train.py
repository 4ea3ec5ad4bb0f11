"""Q-learning of the readout: n-step transitions, the double-DQN update, and the cartpole-lsm recipe
end to end on a small reservoir (through `hilkit train`, which shows episode returns)."""
from __future__ import annotations

import numpy as np
import pytest

from hilkit.host import cli
from hilkit.models import modelfile, qlearn, recipes, reservoir

pytest.importorskip("gymnasium")

TINY_RES = reservoir.ReservoirConfig(neurons=30, excitatory=24, timesteps=10, in_density=0.5, in_weight=(0.6, 1.5))
TINY_DQN = qlearn.DQNConfig(env_steps=1024, n_envs=16, hidden=8, learn_start=256, updates_per_step=2,
                            eval_every=512, eps_steps=512)


def test_nstep_returns_and_episode_ends():
    ns = qlearn.NStep(n_envs=2, n=3, gamma=0.5)
    f = np.arange(2)[:, None] * np.ones((2, 1), np.float32)
    out = []
    for t in range(4):
        term = np.array([t == 3, False])
        out += ns.push(f + t, np.array([t, t]), np.ones(2), f + t + 1, term, np.zeros(2, bool))
    # bootstrapped 3-step returns: env 0 from t = 0, env 1 from t = 0 and 1
    full = [o for o in out if o[4] == 0.0]
    assert len(full) == 3 and all(o[2] == 1 + 0.5 + 0.25 and o[5] == 0.125 for o in full)
    assert sorted(float(o[0][0]) for o in full) == [0.0, 1.0, 2.0]
    # env 0's episode ends at t = 3: its last three steps become terminal, shorter at the end
    ends = [o for o in out if o[4] == 1.0]
    assert [o[2] for o in ends] == [1.75, 1.5, 1.0] and [o[5] for o in ends] == [0.125, 0.25, 0.5]
    # a truncated episode's pending steps are dropped
    assert ns.push(f, np.zeros(2), np.ones(2), f, np.zeros(2, bool), np.array([False, True])) == []
    assert ns.pending[1] == []


def test_dqn_update_moves_q_toward_the_target():
    rng = np.random.default_rng(0)
    online = qlearn.readout_net(5, 8, 2, rng)
    target = qlearn.readout_net(5, 8, 2, rng)
    qlearn.copy_params(online, target)
    opt = qlearn.Adam(online.parameters(), lr=1e-2)
    f = rng.random((64, 5)).astype(np.float32)
    a = rng.integers(0, 2, 64)
    batch = (f, a, np.full(64, 3.0, np.float32), f, np.ones(64, np.float32), np.ones(64, np.float32))
    losses = [qlearn.dqn_update(online, target, opt, batch, huber=1.0) for _ in range(200)]
    q = online.forward(f)[np.arange(64), a]
    assert losses[-1] < 0.05 * losses[0] and np.abs(q - 3.0).mean() < 0.3


def test_deployed_policy_is_the_quantized_readout():
    rng = np.random.default_rng(1)
    res_p = reservoir.random_reservoir(rng, 4, TINY_RES)
    attrs = {"neurons": 30, "excitatory": 24, "timesteps": 10, "hidden": 8, "actions": 2}
    zero = {"w1": np.zeros((8, 24)), "b1": np.zeros(8), "w2": np.zeros((2, 8)), "b2": np.zeros(2),
            "out_scale": np.ones(1)}
    res = reservoir.Reservoir.from_node(attrs, (5,), {"gain": np.full(4, 200.0), **res_p, **zero})
    net = qlearn.readout_net(24, 8, 2, rng)
    pol, q, shift = qlearn.deployed(res, net)
    counts = rng.integers(0, 11, (50, 24))
    act, out = pol.readout(counts)
    y = net.forward((counts / 10).astype(np.float32))
    gap = np.abs(y[:, 0] - y[:, 1]) > 1e-3
    assert np.array_equal(act[gap], y.argmax(1)[gap]) and np.allclose(out, y, atol=1e-3)


def test_cartpole_lsm_through_hilkit_train(tmp_path, monkeypatch, capsys):
    calls = []

    def small(out_path, *, seed=0, epochs=None, progress=None):
        def spy(*a, **kw):
            calls.append(kw.get("info"))
            progress(*a, **kw)
        return qlearn.recipe(out_path, seed=seed, epochs=epochs, progress=spy, config=TINY_DQN,
                             reservoir_config=TINY_RES)

    monkeypatch.setitem(recipes.RECIPES, "cartpole-lsm", small)
    out = tmp_path / "p.npz"
    assert cli.main(["train", "cartpole-lsm", "-o", str(out), "--seed", "3"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "mean return" in err and "over 100 test episodes" in err
    assert calls and all("return" in c for c in calls)
    m = modelfile.load(out)
    assert [layer["op"] for layer in m.layers] == ["lsm_policy"] and m.input_shape == (5,)
    meta = m.graph["meta"]
    assert meta["trainable_parameters"] == 24 * 8 + 8 + 8 * 2 + 2 and meta["reservoir_neurons"] == 30
    assert len(meta["history"]) == 2 and meta["test_mean_return"] >= 8
    # the stored test figure is the written model's, run through the reference
    from hilkit.host.control import load_policy, numpy_episodes
    _, _, res = load_policy(out)
    assert numpy_episodes(res, range(100)).mean() == pytest.approx(meta["test_mean_return"])
    # the recipe is deterministic for a seed
    again = qlearn.recipe(tmp_path / "q.npz", seed=3, config=TINY_DQN, reservoir_config=TINY_RES)
    assert again["hash"] == m.hash
