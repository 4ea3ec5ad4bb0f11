"""Memory planner: lifetimes, aliasing, arena vs lower bound, no overlapping live buffers."""
import numpy as np

from hilkit.codegen import passes, planner
from hilkit.codegen.ir import Graph, Node


def _chain(specs, input_shape):
    nodes, prev, shape = [], "input", input_shape
    for name, op, out_shape in specs:
        nodes.append(Node(name=name, op=op, inputs=[prev], in_shapes=[shape], out_shape=out_shape))
        prev, shape = name, out_shape
    return Graph(name="t", model_hash="0" * 16, input_shape=input_shape, nodes=nodes, output=prev)


def _check_no_overlap(p):
    for a in p.buffers:
        for b in p.buffers:
            if a.id < b.id and a.start <= b.end and b.start <= a.end:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


def test_cnn_chain_reaches_lower_bound():
    g = _chain([("c1", "conv2d", (8, 8, 8)), ("r1", "relu", (8, 8, 8)), ("p1", "maxpool2d", (8, 4, 4)),
                ("c2", "conv2d", (16, 4, 4)), ("r2", "relu", (16, 4, 4)), ("p2", "maxpool2d", (16, 2, 2)),
                ("f", "flatten", (64,)), ("d", "dense", (10,)), ("s", "softmax", (10,))], (1, 8, 8))
    g = passes.fuse_relu(g)
    assert [n.op for n in g.nodes] == ["conv2d", "maxpool2d", "conv2d", "maxpool2d", "flatten", "dense", "softmax"]
    assert g.node("c1").fused_relu and g.node("c2").fused_relu
    p = planner.plan(g)
    _check_no_overlap(p)
    # conv1 output (2048 B) and pool1 output (512 B) are live together; nothing larger ever is.
    assert p.lower_bound == 2048 + 512
    assert p.arena_bytes == p.lower_bound
    assert p.storage["f"] == p.storage["p2"]  # flatten is a view
    assert p.storage["s"] == "out" and p.storage["input"] == "in"


def test_inplace_elementwise_and_residual_lifetimes():
    # x -> d1 -> relu -> d2 -> add(d2, relu) -> softmax: the relu output must live until the add.
    g = _chain([("d1", "dense", (32,)), ("r", "relu", (32,)), ("d2", "dense", (32,))], (64,))
    g.nodes.append(Node(name="a", op="add", inputs=["d2", "r"], in_shapes=[(32,), (32,)], out_shape=(32,)))
    g.nodes.append(Node(name="s", op="softmax", inputs=["a"], in_shapes=[(32,)], out_shape=(32,)))
    g.output = "s"
    p = planner.plan(g)
    _check_no_overlap(p)
    assert p.storage["r"] == p.storage["d1"]  # relu in place: d1 dies there
    assert p.storage["a"] == p.storage["d2"]  # add in place into its first input
    r_buf = p.buffers[int(p.storage["r"][3:])]
    assert r_buf.end == 3  # read by the add at step 3
    assert p.arena_bytes == p.lower_bound == 2 * 128


def test_random_chains_never_overlap_and_stay_near_bound():
    rng = np.random.default_rng(0)
    for _ in range(50):
        specs, n = [], int(rng.integers(2, 12))
        for i in range(n):
            op = ["dense", "relu", "conv2d"][int(rng.integers(0, 3))]
            c = int(rng.integers(1, 9))
            specs.append((f"n{i}", op, (c, 4, 4)))
        g = _chain(specs, (1, 4, 4))
        p = planner.plan(g)
        _check_no_overlap(p)
        assert p.arena_bytes >= p.lower_bound
        assert p.arena_bytes <= 1.5 * p.lower_bound + 16


def test_flatten_output_is_written_to_out():
    g = _chain([("d", "dense", (4, 2, 2)), ("f", "flatten", (16,))], (8,))
    p = planner.plan(g)
    assert p.storage["f"] == "out"


def test_no_in_place_write_into_a_buffer_a_view_of_it_is_still_read_from():
    # r = relu(x); f = flatten(r) (a view of r); s = sigmoid(f); a = add(s, r): s must not overwrite r.
    g = _chain([("c", "conv2d", (2, 2, 2)), ("r", "relu", (2, 2, 2)), ("f", "flatten", (8,)),
                ("s", "sigmoid", (8,))], (1, 2, 2))
    g.nodes.append(Node(name="h", op="flatten", inputs=["r"], in_shapes=[(2, 2, 2)], out_shape=(8,)))
    g.nodes.append(Node(name="a", op="add", inputs=["s", "h"], in_shapes=[(8,), (8,)], out_shape=(8,)))
    g.output = "a"
    p = planner.plan(g)
    _check_no_overlap(p)
    assert p.storage["f"] == p.storage["r"]
    assert p.storage["s"] != p.storage["r"], "sigmoid would clobber r, which the add still reads"
