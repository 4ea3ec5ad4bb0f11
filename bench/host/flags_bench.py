"""Host builds of one generated model side by side: compiler flags, kernel paths and exp variants.

Each configuration `name=exp:flag,flag,...` compiles the model's generated C (for the host board)
with those flags; all of them are linked into one executable with bench/quake/model_bench.c and
timed in interleaved rounds (every inference on its own, the configurations taking turns at every
input; the median per input averaged over the inputs). Prints ns per inference, the ratio to the
first configuration, and how far each configuration's outputs are from the first one's (bits).

    .venv/bin/python bench/host/flags_bench.py out/quake/digits-vit.npz \
        base=libm:-O2 native=libm:-O3,-march=native portable=libm:-O3,-march=native,-DHK_NN_PORTABLE

`-DHK_NN_PORTABLE` / `-DHK_EXP_PORTABLE` force the portable C of the dense/conv and exp kernels,
`-include bench/quake/free_exp.h -DHK_EXP_ZERO` (write it as `zero` in the exp slot) is e^x = 1.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "quake"))
import model_bench as mb  # noqa: E402

from hilkit.codegen.build import resource_dir  # noqa: E402
from hilkit.codegen.generate import generate  # noqa: E402
from hilkit.models import data, modelfile  # noqa: E402


def parse_config(text: str) -> tuple[str, str, list[str]]:
    name, _, rest = text.partition("=")
    exp, _, flags = rest.partition(":")
    if not name or exp not in ("libm", "quake1", "quake2", "zero", "stub"):
        raise SystemExit(f"bad configuration {text!r}: write name=libm|quake1|quake2|zero|stub:-O2,-march=native")
    return name, exp, [f for f in flags.split(",") if f]


def run(model: Path, configs: list[tuple[str, str, list[str]]], limit: int | None = None,
        rounds: int = 31) -> dict:
    m = modelfile.load(model)
    _, _, X, _ = data.digits_split()
    X = X.reshape((-1,) + tuple(m.shapes["input"]))[:limit]
    n_out = int(np.prod(m.output_shape))
    kern, fw = resource_dir("kernels_c"), resource_dir("firmware")
    with tempfile.TemporaryDirectory(prefix="hk_flags_") as tmp:
        wd = Path(tmp)
        mb.inputs_header(wd / "hkb_inputs.h", X, n_out)
        gen, objs = {}, []
        for name, exp, flags in configs:
            src_exp = "libm" if exp in mb.EXPLESS else exp
            if src_exp not in gen:
                gen[src_exp] = generate(model, "host", wd / f"gen-{src_exp}", exp=src_exp).out_dir
            d = gen[src_exp]
            obj = wd / f"model_{name}.o"
            extra = [*mb.EXPLESS[exp], "-include", str(mb.HERE / "free_exp.h")] if exp in mb.EXPLESS else []
            mb._run(["gcc", *mb.STRICT, *flags, f"-I{kern}", f"-I{fw}", f"-I{d}", *extra,
                     f"-Dhk_model_infer=hk_model_infer_{name}", f"-Dhk_model_extra=hk_model_extra_{name}",
                     "-c", d / "model.c", "-o", obj], f"compiling {name}")
            objs.append(obj)
        exe = wd / "flags_bench"
        listing = " ".join(f"X({c[0]})" for c in configs)
        mb._run(["gcc", *mb.STRICT, "-O2", f"-DHKB_VARIANTS(X)={listing}", "-DHKB_TIMING",
                 f"-DHKB_ROUNDS={rounds}", f"-I{wd}", mb.HERE / "model_bench.c", *objs, "-o", exe, "-lm"],
                "linking")
        outs, ns = mb.run_host(exe, [c[0] for c in configs])
    first = configs[0][0]
    y0 = outs[first].reshape(len(X), -1)
    rows = []
    for name, exp, flags in configs:
        y = outs[name].reshape(len(X), -1)
        rows.append({"name": name, "exp": exp, "flags": flags, "ns": ns[name]["median_ns"],
                     "ratio_to_first": ns[name]["median_ns"] / ns[first]["median_ns"],
                     "bits_equal_first": bool(np.array_equal(y.view(np.uint32), y0.view(np.uint32))),
                     "max_abs_diff_first": float(np.max(np.abs(y - y0)))})
    return {"model": m.name, "samples": int(len(X)), "rounds": rounds, "configs": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("config", nargs="+", help="name=exp:flag,flag,...")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test samples")
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    res = run(a.model, [parse_config(c) for c in a.config], a.limit, a.rounds)
    for r in res["configs"]:
        print(f"{res['model']:16s} {r['name']:14s} {r['exp']:7s} {r['ns']:10.1f} ns  x{r['ratio_to_first']:.3f}  "
              f"{'same bits' if r['bits_equal_first'] else 'max diff %.2g' % r['max_abs_diff_first']}  "
              f"{' '.join(r['flags'])}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
