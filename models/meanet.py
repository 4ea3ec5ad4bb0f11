"""MEANet (ICDCS 2021) on the digits: an edge model with an early exit and an extension block for
the hard classes, and a larger cloud model on the host (docs/meanet.md).

Inference, per sample (`gate`): the main block and its exit run on the board. If the exit's
softmax entropy is above the threshold (the paper's scripts use 0.8 nats), the input goes to the
cloud; otherwise, if the exit predicts an easy class the board answers with it, and if it predicts
a hard class the board runs the extension block (main-block features + an adaptive block on the
input, trained on hard-class samples only) and answers with the merged distribution (`merge`).

The decision math here is float32 in the same order of operations as kernels_c/hk_meanet.h, so
the board and this reference compute the same entropy up to the last bits of their logits.

Files: the edge model is an ordinary model file (ops `meanet_gate` and `meanet_merge`, see
docs/model-format.md); the cloud model is a second model file beside it, named in the edge
model's `meta.meanet.cloud` with its hash.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import as_images
from .layers import Conv2D, Dense, Flatten, MaxPool2D, Module, ReLU, Softmax
from .network import GraphBuilder, Sequential

TIER_MAIN, TIER_EXTENSION, TIER_CLOUD = 0, 1, 2
TIERS = ("edge_main", "edge_extension", "cloud")
CRITERIA = ("entropy", "confidence")
PAPER_ENTROPY_THRESHOLD = 0.8   # nats; the threshold of the MEANet authors' scripts
COUNTERS = ("meanet_tier", "meanet_score", "meanet_top")  # the gate's u32 counters on the board


# ---------------------------------------------------------------- hard-class sets
def parse_hard(text: str, n_classes: int) -> tuple[int, ...]:
    """The `hard` attribute ("1,4,5") as sorted class indices; raises ValueError if malformed."""
    try:
        idx = [int(t) for t in str(text).split(",")]
    except ValueError:
        raise ValueError(f"hard classes {text!r} must be comma-separated class indices") from None
    if sorted(set(idx)) != idx:
        raise ValueError(f"hard classes {text!r} must be distinct and ascending")
    if not idx or idx[0] < 0 or idx[-1] >= n_classes or len(idx) >= n_classes:
        raise ValueError(f"hard classes {text!r} must be 1..{n_classes - 1} indices in 0..{n_classes - 1}")
    return tuple(idx)


def format_hard(classes) -> str:
    return ",".join(str(int(c)) for c in sorted(classes))


# ---------------------------------------------------------------- the decision math (float32)
def softmax_f32(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis as hk_meanet_softmax_f32 computes it: e = exp(z - max), summed
    left to right, p = e / sum."""
    z = np.asarray(z, dtype=np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True)).astype(np.float32)
    s = e[..., 0].copy()
    for i in range(1, e.shape[-1]):
        s = s + e[..., i]
    return (e / s[..., None]).astype(np.float32)


def entropy_f32(p: np.ndarray) -> np.ndarray:
    """H = -sum p log p (nats) over the last axis, left to right, skipping p = 0 (hk_meanet_entropy_f32)."""
    p = np.asarray(p, dtype=np.float32)
    h = np.zeros(p.shape[:-1], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(p.shape[-1]):
            pi = p[..., i]
            t = np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, np.float32(1))), np.float32(0))
            h = (h - t).astype(np.float32)
    return h


def gate(z: np.ndarray, hard, threshold: float, criterion: str = "entropy"):
    """The board's decision for a batch of exit logits z [N, n].

    Returns (p, tier, score, top): the exit's softmax, the tier (TIER_MAIN / TIER_EXTENSION /
    TIER_CLOUD), the score compared with the threshold (entropy in nats, or the top probability)
    and the exit's top class. Cloud when entropy > threshold (or top probability < threshold);
    otherwise extension when the top class is hard, else main."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    p = softmax_f32(np.atleast_2d(z))
    top = p.argmax(axis=-1)
    thr = np.float32(threshold)
    if criterion == "entropy":
        score = entropy_f32(p)
        cloud = score > thr
    else:
        score = p.max(axis=-1)
        cloud = score < thr
    is_hard = np.isin(top, np.asarray(hard, dtype=np.int64))
    tier = np.where(cloud, TIER_CLOUD, np.where(is_hard, TIER_EXTENSION, TIER_MAIN))
    return p, tier.astype(np.int64), score.astype(np.float32), top.astype(np.int64)


def merge(p: np.ndarray, ext_logits: np.ndarray, hard) -> np.ndarray:
    """The edge's answer [N, n]: the exit's distribution p, with the mass of the hard classes
    redistributed by the extension block where the exit's top class is hard:
    y[h_j] = P_hard * softmax(ext)_j, P_hard = sum_j p[h_j] (left to right). Easy-top rows keep p."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float32))
    hard = list(hard)
    q = softmax_f32(np.atleast_2d(ext_logits))
    mass = p[:, hard[0]].copy()
    for h in hard[1:]:
        mass = mass + p[:, h]
    y = p.copy()
    y[:, hard] = mass[:, None] * q
    top_hard = np.isin(p.argmax(axis=-1), hard)
    return np.where(top_hard[:, None], y, p).astype(np.float32)


# ---------------------------------------------------------------- training
@dataclass(frozen=True)
class Sizes:
    """The three networks. Main block: dense (main_hidden) + relu on the flat input -> features;
    exit: dense n_classes. Extension: adaptive dense + relu on the input (adaptive) and a dense
    from the main features, summed -> relu (ext_hidden) -> dense n_hard. Cloud (host only): conv
    3x3 16, pool, conv 3x3 32, pool, dense 64, dense n_classes on the 1x8x8 image."""

    main_hidden: int = 64
    adaptive: int = 16
    ext_hidden: int = 32
    cloud_filters: tuple[int, int] = (16, 32)
    cloud_hidden: int = 64


def shift_augment(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images plus their copies shifted one pixel up, down, left and right (zero fill)."""
    out, ys = [X], [y]
    for axis, step in ((2, 1), (2, -1), (3, 1), (3, -1)):
        s = np.roll(X, step, axis=axis)
        edge = [slice(None)] * 4
        edge[axis] = 0 if step == 1 else -1
        s[tuple(edge)] = 0
        out.append(s)
        ys.append(y)
    return np.concatenate(out), np.concatenate(ys)


class Extension(Module):
    """The extension block, trained as one module on rows [main-block features | flattened input]:
    logits = W_o relu(W_m f + W_a relu(W_x x + b_x) + b_m + b_a) + b_o (exported as dense, dense,
    add, relu, dense: no new op)."""

    def __init__(self, n_feat: int, n_in: int, sizes: Sizes, n_hard: int, rng: np.random.Generator):
        super().__init__()
        self.n_feat = n_feat
        self.adapt, self.adapt_relu = Dense(n_in, sizes.adaptive, rng), ReLU()
        self.from_main = Dense(n_feat, sizes.ext_hidden, rng)
        self.from_adapt = Dense(sizes.adaptive, sizes.ext_hidden, rng)
        self.relu, self.out = ReLU(), Dense(sizes.ext_hidden, n_hard, rng)

    def children(self):
        return [self.adapt, self.from_main, self.from_adapt, self.out]

    def forward(self, X, train=False):
        f, x = X[:, :self.n_feat], X[:, self.n_feat:]
        a = self.adapt_relu.forward(self.adapt.forward(x))
        h = self.relu.forward(self.from_main.forward(f) + self.from_adapt.forward(a))
        return self.out.forward(h)

    def backward(self, dy):
        dh = self.relu.backward(self.out.backward(dy))
        d_feat = self.from_main.backward(dh)
        d_in = self.adapt.backward(self.adapt_relu.backward(self.from_adapt.backward(dh)))
        return np.concatenate([d_feat, d_in], axis=1)


def _train(net, X, y, *, epochs, lr, seed, batch_size=64, weight_decay=1e-2, progress=None):
    from threadpoolctl import threadpool_limits

    from .optim import Adam
    from .train import cosine_lr, fit
    opt = Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    with threadpool_limits(1, user_api="blas"):  # small matrices: one thread is as fast, leaves cores free
        return fit(net, X, y, opt, epochs=epochs, batch_size=batch_size, rng=np.random.default_rng(seed),
                   lr_schedule=cosine_lr(lr, epochs), progress=progress)


@dataclass
class Trained:
    features: object          # Sequential: input image -> main-block features
    exit: object              # Dense: features -> exit logits
    extension: Extension
    cloud: object             # Sequential: image -> logits
    hard: tuple[int, ...]
    val_class_accuracy: list[float]
    n_classes: int


def train(X_train, y_train, *, seed: int = 0, epochs: int | None = None, sizes: Sizes = Sizes(),
          progress=None) -> tuple[Trained, dict]:
    """Train the main block + exit, pick the hard classes on a validation split carved from the
    training split (seeded, stratified 20 %), train the extension on hard-class samples only and
    the cloud on all classes. Returns (networks, validation split and timings)."""
    from sklearn.model_selection import train_test_split

    from .train import predict_logits

    n_classes = int(y_train.max()) + 1
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.2, stratify=y_train,
                                                  random_state=seed)
    X_aug, y_aug = shift_augment(as_images(X_fit), y_fit)
    seeds = np.random.SeedSequence(seed).spawn(6)
    rng = [np.random.default_rng(s) for s in seeds]
    ep_main, ep_ext, ep_cloud = (30, 30, 20) if epochs is None else (epochs,) * 3
    stages = ep_main + ep_ext + ep_cloud

    def stage_progress(offset):
        if progress is None:
            return None
        return lambda e, _n, loss, acc: progress(offset + e, stages, loss, acc)

    t0 = time.perf_counter()
    flat = X_aug.reshape(len(X_aug), -1)
    n_in = flat.shape[1]
    feat = Sequential([Dense(n_in, sizes.main_hidden, rng[0]), ReLU()])
    n_feat = sizes.main_hidden
    exit_ = Dense(n_feat, n_classes, rng[0])
    _train(Sequential([feat, exit_]), flat, y_aug, epochs=ep_main, lr=3e-3, seed=seeds[3], batch_size=32,
           progress=stage_progress(0))

    # Hard classes: the half with the lowest per-class validation accuracy of the main exit
    # (ties: the lower class index counts as harder, so the choice is deterministic).
    pred = predict_logits(Sequential([feat, exit_]), X_val).argmax(axis=1)
    acc = [float((pred[y_val == c] == c).mean()) for c in range(n_classes)]
    hard = tuple(sorted(int(c) for c in np.argsort(acc, kind="stable")[:n_classes // 2]))

    sel = np.isin(y_aug, hard)
    remap = np.full(n_classes, -1)
    remap[list(hard)] = np.arange(len(hard))
    rows = np.concatenate([feat.forward(flat[sel]), flat[sel]], axis=1)
    ext = Extension(n_feat, n_in, sizes, len(hard), rng[1])
    _train(ext, rows, remap[y_aug[sel]], epochs=ep_ext, lr=3e-3, seed=seeds[4],
           progress=stage_progress(ep_main))

    c1, c2 = sizes.cloud_filters
    cloud = Sequential([Conv2D(1, c1, 3, rng[2], padding="same"), ReLU(), MaxPool2D(2),
                        Conv2D(c1, c2, 3, rng[2], padding="same"), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(c2 * (X_aug.shape[2] // 4) * (X_aug.shape[3] // 4), sizes.cloud_hidden, rng[2]),
                        ReLU(), Dense(sizes.cloud_hidden, n_classes, rng[2])])
    _train(cloud, X_aug, y_aug, epochs=ep_cloud, lr=3e-3, seed=seeds[5], progress=stage_progress(ep_main + ep_ext))
    nets = Trained(feat, exit_, ext, cloud, hard, [round(a, 6) for a in acc], n_classes)
    return nets, {"X_val": X_val, "y_val": y_val, "train_seconds": time.perf_counter() - t0,
                  "fit_samples": int(len(y_fit)), "val_samples": int(len(y_val))}


# ---------------------------------------------------------------- export
def edge_graph(nets: Trained, input_shape, *, threshold: float, criterion: str = "entropy",
               name: str = "digits-meanet", meta: dict | None = None) -> tuple[dict, dict]:
    """The edge model's graph: main block, exit, gate, then the extension block and the merge
    (the graph output). Everything after the gate runs only for the extension tier."""
    b = GraphBuilder(input_shape)
    f = nets.features.export(b, [b.input_name])                     # dense1 relu1
    hard = format_hard(nets.hard)
    z = b.add("dense", [f], nets.exit.attrs(), nets.exit.params, name="exit")
    g = b.add("meanet_gate", [z], {"hard": hard, "criterion": criterion},
              {"threshold": np.array([threshold], np.float32)}, name="gate")
    e = nets.extension
    a = b.add("dense", [b.input_name], e.adapt.attrs(), e.adapt.params, name="adapt")
    a = b.add("relu", [a], name="adapt_relu")
    hm = b.add("dense", [f], e.from_main.attrs(), e.from_main.params, name="ext_main")
    ha = b.add("dense", [a], e.from_adapt.attrs(), e.from_adapt.params, name="ext_adapt")
    h = b.add("add", [hm, ha], name="ext_join")
    h = b.add("relu", [h], name="ext_relu")
    o = b.add("dense", [h], e.out.attrs(), e.out.params, name="ext_out")
    out = b.add("meanet_merge", [g, o], {"hard": hard}, name="merge")
    return b.graph(name=name, output=out, meta=meta)


def cloud_graph(nets: Trained, input_shape, *, name: str, meta: dict | None = None) -> tuple[dict, dict]:
    return Sequential([nets.cloud, Softmax()]).to_graph(input_shape, name=name, meta=meta)


# ---------------------------------------------------------------- reading a MEANet model file
@dataclass
class EdgeSpec:
    """What the host needs to know about an edge model: its gate and merge nodes."""

    gate: str
    merge: str
    exit: str                  # the gate's input (exit logits)
    hard: tuple[int, ...]
    threshold: np.float32
    criterion: str
    n_classes: int
    cloud_file: str | None
    cloud_hash: str | None


def spec(model) -> EdgeSpec | None:
    """The MEANet nodes of a LoadedModel, or None for an ordinary model. Raises ValueError for a
    gate without its merge as the graph output, or hard-class sets that disagree."""
    gates = [layer for layer in model.layers if layer["op"] == "meanet_gate"]
    if not gates:
        return None
    if len(gates) > 1:
        raise ValueError(f"model {model.name!r} has {len(gates)} meanet_gate layers; one is supported")
    g = gates[0]
    out = next(layer for layer in model.layers if layer["name"] == model.output)
    if out["op"] != "meanet_merge" or out["inputs"][0] != g["name"]:
        raise ValueError(f"model {model.name!r}: the output must be a meanet_merge of gate {g['name']!r}")
    n = int(model.shapes[g["name"]][0])
    hard = parse_hard(g["attrs"]["hard"], n)
    if parse_hard(out["attrs"]["hard"], n) != hard:
        raise ValueError(f"model {model.name!r}: gate and merge name different hard classes")
    info = (model.graph.get("meta") or {}).get("meanet") or {}
    return EdgeSpec(gate=g["name"], merge=out["name"], exit=g["inputs"][0], hard=hard,
                    threshold=np.float32(model.params(g)["threshold"][0]), criterion=g["attrs"]["criterion"],
                    n_classes=n, cloud_file=info.get("cloud"), cloud_hash=info.get("cloud_hash"))


def edge_reference(model, X) -> dict:
    """The float32 reference of the edge for a batch: exit probabilities, tier, score, top class
    and the edge's answer (what the board returns when it does not offload)."""
    from . import reference
    s = spec(model)
    if s is None:
        raise ValueError(f"model {model.name!r} is not a MEANet edge model (no meanet_gate)")
    trace = reference.forward_trace(model, X)
    p, tier, score, top = gate(trace[s.exit], s.hard, s.threshold, s.criterion)
    return {"probs": p, "tier": tier, "score": score, "top": top, "edge": trace[model.output]}


def with_threshold(model_path, threshold: float, out_path, criterion: str | None = None):
    """Write a copy of an edge model file with another gate threshold (and criterion)."""
    from . import modelfile
    m = modelfile.load(model_path)
    s = spec(m)
    if s is None:
        raise ValueError(f"{model_path} is not a MEANet edge model")
    graph, arrays = m.graph, dict(m.arrays)
    g = next(layer for layer in graph["layers"] if layer["name"] == s.gate)
    arrays[g["params"]["threshold"]] = np.array([threshold], np.float32)
    if criterion is not None:
        g["attrs"]["criterion"] = criterion
    graph.setdefault("meta", {}).setdefault("meanet", {})["threshold"] = float(np.float32(threshold))
    return modelfile.save(out_path, graph, arrays)


def cloud_path_for(edge_path) -> Path:
    """Where the recipe writes the cloud model: <edge stem>.cloud.npz beside the edge model."""
    p = Path(edge_path)
    return p.with_name(p.stem + ".cloud.npz")


# ---------------------------------------------------------------- the recipe
def recipe(out_path, *, seed: int = 0, epochs: int | None = None, progress=None,
           threshold: float = PAPER_ENTROPY_THRESHOLD, name: str = "digits-meanet") -> dict:
    """Train MEANet on the digits and write the edge model (out_path) and the cloud model
    (<stem>.cloud.npz beside it). The summary's test figures use the float32 reference."""
    from . import modelfile, reference
    from .data import DIGITS_SHAPE, digits_split

    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    X_train, y_train, X_test, y_test = digits_split()
    nets, info = train(X_train, y_train, seed=seed, epochs=epochs, progress=progress)
    out_path = Path(out_path)
    cloud_path = cloud_path_for(out_path)
    common = {"classes": nets.n_classes, "dataset": "sklearn-digits", "seed": int(seed),
              "epochs": epochs if epochs is not None else "30/30/20 (main/extension/cloud)",
              "augmentation": "one-pixel shifts (x5)"}
    cloud_graph_, cloud_arrays = cloud_graph(nets, DIGITS_SHAPE, name=name + "-cloud",
                                             meta=dict(common, recipe=name, role="meanet cloud"))
    cloud_model = modelfile.validate(cloud_graph_, cloud_arrays)
    cloud_probs = reference.forward(cloud_model, as_images(X_test))

    def evaluate(edge_model, X, y, cloud_p):
        r = edge_reference(edge_model, X)
        final = np.where((r["tier"] == TIER_CLOUD)[:, None], cloud_p, r["edge"])
        return {"accuracy": float((final.argmax(1) == y).mean()),
                "edge_only_accuracy": float((r["edge"].argmax(1) == y).mean()),
                "main_exit_accuracy": float((r["probs"].argmax(1) == y).mean()),
                "cloud_accuracy": float((cloud_p.argmax(1) == y).mean()),
                "tiers": {t: int((r["tier"] == i).sum()) for i, t in enumerate(TIERS)},
                "edge_fraction": float((r["tier"] != TIER_CLOUD).mean())}

    meta = dict(common, recipe=name, split="train_test_split(test_size=0.2, stratify=y, random_state=0)",
                meanet={"cloud": cloud_path.name, "hard_classes": list(nets.hard), "threshold": float(np.float32(threshold)),
                        "criterion": "entropy", "tiers": list(TIERS),
                        "validation": f"{info['val_samples']} samples carved from the training split "
                                      f"(stratified, random_state={seed})",
                        "val_class_accuracy": nets.val_class_accuracy})
    graph, arrays = edge_graph(nets, (int(np.prod(DIGITS_SHAPE)),), threshold=threshold, name=name, meta=meta)
    edge = modelfile.validate(graph, arrays)
    cloud_val = reference.forward(cloud_model, as_images(info["X_val"]))
    val = evaluate(edge, info["X_val"], info["y_val"], cloud_val)
    test = evaluate(edge, X_test, y_test, cloud_probs)
    saved_cloud = modelfile.save(cloud_path, cloud_graph_, cloud_arrays)
    graph["meta"]["meanet"]["cloud_hash"] = saved_cloud.hash
    graph["meta"]["meanet"]["val"] = {k: v for k, v in val.items()}
    graph["meta"]["test_accuracy"] = round(test["accuracy"], 6)
    graph["meta"]["meanet"]["test"] = test
    saved = modelfile.save(out_path, graph, arrays)
    return {"recipe": name, "path": str(out_path), "hash": saved.hash, "cloud_path": str(cloud_path),
            "cloud_hash": saved_cloud.hash, "test_accuracy": test["accuracy"], "test_samples": int(len(y_test)),
            "train_seconds": round(info["train_seconds"], 3), "seed": int(seed), "epochs": epochs,
            "hard_classes": list(nets.hard), "threshold": float(np.float32(threshold)), "val": val, "test": test,
            "params": int(sum(a.size for a in arrays.values())),
            "cloud_params": int(sum(a.size for a in cloud_arrays.values()))}
