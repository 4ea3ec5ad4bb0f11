"""Plot the relative error of the exp variants (quake1, quake2, libm expf) against exact exp.

    python bench/exp/plot_errors.py OUT.png [--curve CURVE.txt]

With --curve, plots the binned curves written by `exp_error --curve` (exhaustive over every
float32 in [-87, 88]); without, samples 4 million points through hilkit.host._kernels (seconds).
Top: the signed error over [-1, 1] (the shape of each approximation); bottom: the largest error
in each quarter unit over the whole range (log scale: flat, so no range is worse than another).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

VARIANTS = ("quake1", "quake2", "libm")
COLORS = {"quake1": "tab:red", "quake2": "tab:blue", "libm": "tab:green"}


def sampled_curves(n: int = 4_000_000, bins_per_unit: int = 256):
    """(x_lo, {variant: (min, max)}) from a dense sample through the C kernels."""
    from hilkit.host import _kernels
    x = np.linspace(-87, 88, n).astype(np.float32)
    e = np.exp(x.astype(np.float64))
    b = np.floor((x.astype(np.float64) + 87) * bins_per_unit).astype(np.int64)
    nb = b.max() + 1
    out = {}
    for v in VARIANTS:
        y = np.frombuffer(_kernels.exp_kernel(f"exp_{v}", x), dtype=np.float32).astype(np.float64)
        r = (y - e) / e
        lo = np.full(nb, np.inf)
        hi = np.full(nb, -np.inf)
        np.minimum.at(lo, b, r)
        np.maximum.at(hi, b, r)
        out[v] = (lo, hi)
    keep = np.isfinite(out["quake1"][0])
    xs = -87 + np.arange(nb) / bins_per_unit
    return xs[keep], {v: (lo[keep], hi[keep]) for v, (lo, hi) in out.items()}


def read_curves(path: Path):
    d = np.loadtxt(path, comments="#")
    return d[:, 0], {v: (d[:, 1 + 2 * i], d[:, 2 + 2 * i]) for i, v in enumerate(VARIANTS)}


def fine_curves(lo: float = -1.0, hi: float = 1.0, n: int = 20001):
    """The signed error at n points of [lo, hi] (the approximations' shape over a period)."""
    from hilkit.host import _kernels
    x = np.linspace(lo, hi, n).astype(np.float32)
    e = np.exp(x.astype(np.float64))
    return x, {v: (np.frombuffer(_kernels.exp_kernel(f"exp_{v}", x), dtype=np.float32) - e) / e for v in VARIANTS}


def plot(out: Path, curve: Path | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, env = read_curves(curve) if curve else sampled_curves()
    fx, fine = fine_curves()
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 7.5))
    for v in VARIANTS:
        a.plot(fx, 100 * fine[v], color=COLORS[v], lw=1, label=v)
    a.set_xlabel("x")
    a.set_ylabel("relative error of e^x (%)")
    a.set_title("QuAKE exp: signed relative error against exact exp, x in [-1, 1]")
    a.axhline(0, color="k", lw=0.5)
    a.legend()
    group = 64  # 1/256 bins -> 1/4 units
    for v in VARIANTS:
        lo, hi = env[v]
        m = np.maximum(-lo, hi)
        k = len(m) // group * group
        gx = xs[:k:group]
        gm = m[:k].reshape(-1, group).max(axis=1)
        b.step(gx, 100 * gm, where="post", color=COLORS[v], lw=1.2,
               label=f"{v}: max |err| {100 * m.max():.4g} %")
    b.set_yscale("log")
    b.set_xlabel("x")
    b.set_ylabel("max |relative error| (%) per 1/4")
    b.set_title("over [-87, 88]" + (" (exhaustive: every float32)" if curve else " (4M samples)"))
    b.legend(loc="center right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Plot the exp variants' relative error curves.")
    ap.add_argument("out", type=Path, help="the PNG to write")
    ap.add_argument("--curve", type=Path, help="binned curves from `exp_error --curve FILE` (exhaustive)")
    a = ap.parse_args()
    plot(a.out, a.curve)
    print(a.out)
