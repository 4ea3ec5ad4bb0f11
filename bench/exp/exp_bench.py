"""Command-line wrapper of the exp-kernel bench, whose code lives in the package
(`hilkit.host.bench_exp`, what `hilkit bench exp` runs): kept so this folder's scripts
(exp_agree.py, plot_errors.py) and `python bench/exp/exp_bench.py --board B` work as before.

    .venv/bin/python bench/exp/exp_bench.py --board mps2-an386 --json out.json
"""
from __future__ import annotations

from pathlib import Path

from hilkit.host.bench_exp import (BOARDS, COMMON, EXPS, OPS, QEMU_SYS, BenchError, _tool,
                                   bench_input, build, exact, execute, exhaustive_errors, kernels_dir,
                                   parse, rel_errors, run)

HERE = Path(__file__).resolve().parent
# re-exported for exp_agree.py and scripts that import this module
__all__ = ["BOARDS", "COMMON", "EXPS", "HERE", "OPS", "QEMU_SYS", "BenchError", "_tool", "bench_input", "build",
           "exact", "execute", "exhaustive_errors", "kernels_dir", "parse", "rel_errors", "run"]

if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="host", choices=sorted(BOARDS))
    ap.add_argument("-n", type=int, default=1024)
    ap.add_argument("--json", help="write the result here (default: stdout)")
    a = ap.parse_args()
    res = run(a.board, a.n)
    text = json.dumps(res, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    else:
        print(text)
