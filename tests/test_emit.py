"""C emitter details that do not need a trained model."""
import struct
import subprocess

import numpy as np

from hilkit.codegen.emit_c import _array, c_float, c_ident
from helpers import STRICT, run_cc


def test_float_literals_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(1)
    vals = np.concatenate([
        rng.standard_normal(2000).astype(np.float32),
        (rng.standard_normal(200) * 1e-30).astype(np.float32),
        np.array([0.0, -0.0, 1.0, 3.0, 1e-45, -1e-45, 3.4028235e38, 1.1754944e-38, 0.1, 1e-5], np.float32),
    ])
    for v in vals[:50]:
        assert np.float32(float(c_float(v)[:-1])) == v
    src = tmp_path / "t.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n'
                   + _array("vals", vals)
                   + "int main(void) { for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {"
                     " uint32_t u; memcpy(&u, &vals[i], 4); printf(\"%08x\\n\", (unsigned)u); } return 0; }\n")
    run_cc(["gcc", *STRICT, "-O1", str(src), "-o", str(tmp_path / "t")])
    got = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()
    want = [f"{struct.unpack('<I', struct.pack('<f', v))[0]:08x}" for v in vals]
    assert got == want


def test_identifiers_are_valid_c():
    assert c_ident("conv1") == "conv1"
    assert c_ident("block.1/conv-a") == "block_1_conv_a"
    assert c_ident("3x3") == "l_3x3"


def test_flatten_views_emit_no_code_and_compile(tmp_path):
    from hilkit.codegen import planner
    from hilkit.codegen.emit_c import emit
    from hilkit.codegen.ir import Graph, Node
    from helpers import ROOT
    w = np.ones((3, 4), np.float32)
    g = Graph(name="t", model_hash="0" * 16, input_shape=(1, 2, 2), nodes=[
        Node("f", "flatten", ["input"], [(1, 2, 2)], (4,)),  # a view of the const input
        Node("d", "dense", ["f"], [(4,)], (3,), params={"weight": w, "bias": np.zeros(3, np.float32)}),
        Node("g", "flatten", ["d"], [(3,)], (3,)),
        Node("s", "softmax", ["g"], [(3,)], (3,), attrs={"exp": "libm"})], output="s")
    emit(g, planner.plan(g), tmp_path, "host", {})
    src = (tmp_path / "model.c").read_text()
    assert "hk_copy_f32" not in src and src.count("a view of its input: no code") == 2
    run_cc(["gcc", *STRICT, "-O2", f"-I{ROOT / 'kernels_c'}", f"-I{ROOT / 'firmware'}", f"-I{tmp_path}",
            "-c", str(tmp_path / "model.c"), "-o", str(tmp_path / "model.o")])
