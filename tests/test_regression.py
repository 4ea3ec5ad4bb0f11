"""The board regression suite, through the project's pytest plugin: the trained digits models on
every --hil-board board (`make test` passes `--hil-board all`), compared with the numpy reference,
with the exact instruction counts identical on two separate runs (two QEMU processes)."""
import numpy as np
import pytest

from hilkit.models import data, modelfile, reference

FULL_SPLIT_BOARDS = {"mps2-an386", "host"}  # the default board: the whole test split every time
SAMPLES = 60  # elsewhere: enough to catch a wrong kernel, quick enough for every board


@pytest.fixture(scope="module")
def split():
    _, _, x, y = data.digits_split()
    return x.astype(np.float32), y


def _infer_all(client, x):
    outs, counts = [], []
    for xi in x:
        outs.append(client.infer(xi).outputs)
        counts += client.instruction_counts() or []
    return np.stack(outs), counts


@pytest.mark.qemu
@pytest.mark.parametrize("recipe", ["digits-mlp", "digits-cnn"])
def test_model_agrees_with_reference_and_counts_repeat(recipe, hil_deploy, hil_board, digits_models, split):
    x, y = split
    if hil_board.id not in FULL_SPLIT_BOARDS:
        x, y = x[:SAMPLES], y[:SAMPLES]
    model = digits_models[recipe]
    first = hil_deploy(model)
    out, counts = _infer_all(first, x)
    m = modelfile.load(first.compiled / "model.npz")
    ref = reference.forward(m, x.reshape((-1,) + tuple(m.shapes["input"]))).reshape(len(x), -1)
    assert np.array_equal(out.argmax(1), ref.argmax(1)), "top-1 agreement must be 100 %"
    assert np.abs(out - ref).max() <= 1e-4
    assert np.mean(out.argmax(1) == y) == np.mean(ref.argmax(1) == y)
    if first.kind in ("qemu-system", "qemu-user"):
        assert len(counts) == len(x) and min(counts) > 1000
        second = hil_deploy(model)  # a new QEMU process
        _, counts2 = _infer_all(second, x[:SAMPLES])
        assert counts2 == counts[:SAMPLES], "instruction counts must be identical on two runs"
