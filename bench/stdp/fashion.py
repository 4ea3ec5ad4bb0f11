"""Learned against random kernels on a harder data set than 8x8 digits: Fashion-MNIST (28x28
grey-scale clothing images, 10 classes; 60,000 training and 10,000 test images), from Debian's
package `dataset-fashion-mnist` (the IDX files inside the package: nothing is downloaded here).

    apt-get install dataset-fashion-mnist
    OMP_NUM_THREADS=1 .venv/bin/python bench/stdp/fashion.py [--seeds 0 1 2] [--train 10000] [--test 10000]

For each seed it trains the digits-stdp and digits-restocnet networks (their NetConfigs unchanged:
layers, T = 16, leak, pool 2, STDP on 400 unlabelled images, thresholds from 200) on a stratified
subset of the training images, and the same networks with random kernels (stdp.random_control:
same calibration and readout), plus a softmax readout on the raw pixels (no spiking layer). Writes
results/fashion.json and results/fashion.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np

DATA = Path("/usr/share/datasets/fashion-mnist")
PACKAGE = "dataset-fashion-mnist (Debian)"


def _idx(path: Path) -> np.ndarray:
    """An IDX file (big-endian header: magic with the dimension count, then the sizes) as uint8."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(n_train: int, n_test: int, seed: int = 0):
    """Images [N, 1, 28, 28] in [0, 1] and labels; stratified subsets drawn with `seed`."""
    if not (DATA / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"Fashion-MNIST not found in {DATA}: apt-get install dataset-fashion-mnist")
    out = []
    for part, n in (("train", n_train), ("t10k", n_test)):
        X = _idx(DATA / f"{part}-images-idx3-ubyte.gz")
        y = _idx(DATA / f"{part}-labels-idx1-ubyte.gz").astype(np.int64)
        if n < len(y):
            from sklearn.model_selection import train_test_split
            keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
            X, y = X[np.sort(keep)], y[np.sort(keep)]
        out += [(X.astype(np.float32) / 255.0)[:, None], y]
    return out


def run(seeds, n_train: int, n_test: int) -> dict:
    from hilkit.models import restocnet, stdp

    X_train, y_train, X_test, y_test = load(n_train, n_test)
    nets = {"digits-stdp": stdp.DIGITS_STDP, "digits-restocnet": restocnet.DIGITS_RESTOCNET}
    out = {"dataset": "Fashion-MNIST", "package": PACKAGE, "files": str(DATA),
           "train": len(y_train), "test": len(y_test),
           "subset": "stratified (sklearn train_test_split, random_state 0) of the 60,000 / 10,000 images",
           "seeds": list(seeds), "rows": []}
    for seed in seeds:
        t0 = time.perf_counter()
        w, b = stdp.train_readout(X_train.reshape(len(X_train), -1), y_train, seed)
        acc = float(((X_test.reshape(len(X_test), -1) @ w.T + b).argmax(axis=1) == y_test).mean())
        out["rows"].append({"network": "pixels", "kernels": "none (softmax on the 784 pixels)", "seed": seed,
                            "test_accuracy": acc, "seconds": round(time.perf_counter() - t0, 1)})
        print(out["rows"][-1], flush=True)
        for name, cfg in nets.items():
            for kind, c in (("learned", cfg), ("random", stdp.random_control(cfg))):
                t0 = time.perf_counter()
                net = stdp.train_network(c, X_train, y_train, seed)
                r = stdp.evaluate(net, X_test, y_test)
                out["rows"].append({"network": name, "kernels": kind, "rule": c.rule.describe()["rule"], "seed": seed,
                                    **r, "seconds": round(time.perf_counter() - t0, 1)})
                print({k: v for k, v in out["rows"][-1].items() if k != "spikes_per_layer"}, flush=True)
                save(out)
    return out


RESULTS = Path(__file__).resolve().parent / "results"


def save(out: dict, where: Path = RESULTS) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "fashion.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"Fashion-MNIST ({out['package']}), {out['train']} training / {out['test']} test images",
             "", "| network | kernels | test accuracy per seed (%) | mean (%) |", "|---|---|---|---|"]
    keys = []
    for r in out["rows"]:
        if (r["network"], r["kernels"]) not in keys:
            keys.append((r["network"], r["kernels"]))
    for net, kind in keys:
        accs = [r["test_accuracy"] for r in out["rows"] if r["network"] == net and r["kernels"] == kind]
        lines.append(f"| {net} | {kind} | {', '.join(f'{a * 100:.2f}' for a in accs)} | {np.mean(accs) * 100:.2f} |")
    (where / "fashion.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", type=int, default=10000, help="training images (stratified subset of 60,000)")
    ap.add_argument("--test", type=int, default=10000, help="test images (stratified subset of 10,000)")
    a = ap.parse_args()
    out = run(a.seeds, a.train, a.test)
    save(out)
    print((RESULTS / "fashion.md").read_text())


if __name__ == "__main__":
    main()
