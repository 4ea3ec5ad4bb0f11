"""Our generated C against LiteRT (XNNPACK, one thread) on the host, batch 1: `litert.bench_vs` for
digits-cnn, digits-mlp and digits-vit (libm, and quake2 for the ViT, whose 1 290 exps dominate a
libm build), with what a 3x goal would need from our side.

    .venv/bin/python bench/host/vs_litert.py --json bench/host/results/vs_litert.json [--reps 2000]
        [--model out/host/digits-vit.npz ...] (default: trains the three recipes into out/host/)
        [--before]  (ours built as before the x86 paths: -O2, portable kernels)

Per row: the medians of `hk_model_infer` through ctypes (ours_us, which includes the ctypes call,
ctypes_floor_us) and of LiteRT's invoke() (litert_us, which includes its own Python call,
litert_floor_us: a one-weight graph); speedup = litert_us / ours_us (the headline figure) and
speedup_net with both floors taken off. "3x needs" is litert_us / 3 for ours_us; minus the ctypes
floor that leaves the time for the model's MACs, given as the GMAC/s it would take (the core's
peak: 2 FMA ports x 8 float lanes = 16 MAC/cycle at the measured clock)."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hilkit.codegen.generate import generate
from hilkit.host import litert

RECIPES = ("digits-cnn", "digits-mlp", "digits-vit")


def default_models(out_dir: Path) -> list[Path]:
    from hilkit.models import recipes
    paths = []
    for name in RECIPES:
        p = out_dir / f"{name}.npz"
        if not p.is_file():
            print(f"training {name} -> {p}", file=sys.stderr)
            recipes.RECIPES[name](p)
        paths.append(p)
    return paths


def macs(model: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="hk_macs_") as tmp:
        return generate(model, "host", Path(tmp)).macs


BEFORE = ["-O2", "-DHK_NN_PORTABLE", "-DHK_EXP_PORTABLE"]  # the host build before the x86 paths


def run(models: list[Path], reps: int, quake_for=("digits-vit",), cflags: list[str] | None = None) -> list[dict]:
    rows = []
    for m in models:
        for exp in ("libm", "quake2"):
            if exp == "quake2" and not any(q in m.stem for q in quake_for):
                continue
            r = litert.bench_vs(m, n=reps, exp=exp, cflags=cflags)
            r["macs"] = macs(m)
            need = r["litert_us"] / 3
            r["ours_us_for_3x"] = need
            left = need - r["ctypes_floor_us"]
            r["gmacs_for_3x"] = r["macs"] / (left * 1e3) if left > 0 else None
            r["gmacs_now"] = r["macs"] / ((r["ours_us"] - r["ctypes_floor_us"]) * 1e3)
            rows.append(r)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'model':12s} {'exp':6s} {'ours us':>8s} {'LiteRT us':>9s} {'speedup':>7s} {'net':>6s} "
          f"{'floors (ctypes/LiteRT)':>22s} {'MACs':>7s} {'GMAC/s now':>10s} {'3x needs us':>11s} {'GMAC/s':>8s}")
    for r in rows:
        g3 = f"{r['gmacs_for_3x']:.0f}" if r["gmacs_for_3x"] else "< floor"
        print(f"{r['model']:12s} {r['exp']:6s} {r['ours_us']:8.2f} {r['litert_us']:9.2f} {r['speedup']:6.2f}x "
              f"{r['speedup_net']:5.2f}x {r['ctypes_floor_us']:10.2f} / {r['litert_floor_us']:.2f}   {r['macs']:7d} "
              f"{r['gmacs_now']:10.1f} {r['ours_us_for_3x']:11.2f} {g3:>8s}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", type=Path)
    ap.add_argument("--models-dir", type=Path, default=Path("out/host"))
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--before", action="store_true",
                    help=f"build ours as before the x86 paths ({' '.join(BEFORE)}) instead of the host board's flags")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    rows = run(a.model or default_models(a.models_dir), a.reps, cflags=BEFORE if a.before else None)
    print_rows(rows)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
