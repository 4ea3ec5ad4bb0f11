"""Export of the token (transformer) operators of hilkit (digits-vit) as TFLite ops.

hilkit's token values [T, D] are TFLite tensors [1, T, D]. Each hilkit op becomes the sequence a
converter writes for it: `patches` RESHAPE/TRANSPOSE/RESHAPE, `token_dense` FULLY_CONNECTED with
keep_num_dims, `layernorm` MEAN/SUB/MUL/MEAN/ADD/RSQRT/MUL/MUL/ADD, `attention` FULLY_CONNECTED,
SPLIT, per-head RESHAPE/TRANSPOSE, BATCH_MATMUL, MUL, SOFTMAX, BATCH_MATMUL, TRANSPOSE, RESHAPE,
FULLY_CONNECTED, `token_mean` MEAN. Export only: the importer reads image and vector models."""
from __future__ import annotations

import math

import numpy as np


class TokenOps:
    """Mixin for the exporter (`tensor`, `const`, `op`, `options`, `m`, `s` come from it)."""

    def _i32(self, name, values) -> int:
        return self.const(name, np.asarray(values), np.int32)

    def _reshape(self, name, x, shape) -> int:
        out = self.tensor(name, shape)
        self.op(self.s.BuiltinOperator.RESHAPE, [x, self._i32(name + ".shape", shape)], [out],
                *self.options("ReshapeOptions", newShape=list(shape)))
        return out

    def _transpose(self, name, x, perm, shape) -> int:
        out = self.tensor(name, shape)
        self.op(self.s.BuiltinOperator.TRANSPOSE, [x, self._i32(name + ".perm", perm)], [out],
                *self.options("TransposeOptions"))
        return out

    def _binary(self, code, name, a, b, shape) -> int:
        out = self.tensor(name, shape)
        cls = {self.s.BuiltinOperator.MUL: "MulOptions", self.s.BuiltinOperator.ADD: "AddOptions",
               self.s.BuiltinOperator.SUB: "SubOptions"}[code]
        self.op(code, [a, b], [out], *self.options(cls))
        return out

    def _fc(self, name, x, w, b, shape, out=None) -> int:
        out = self.tensor(name, shape) if out is None else out
        self.op(self.s.BuiltinOperator.FULLY_CONNECTED,
                [x, self.const(name + ".weight", w), self.const(name + ".bias", b)], [out],
                *self.options("FullyConnectedOptions", keepNumDims=True))
        return out

    def _mean_last(self, name, x, shape) -> int:
        out = self.tensor(name, shape)
        self.op(self.s.BuiltinOperator.MEAN, [x, self._i32(name + ".axes", [len(shape) - 1])], [out],
                *self.options("ReducerOptions", keepDims=True))
        return out

    def op_patches(self, la, ins, out, act):
        c, h, w = self.m.shapes[la["inputs"][0]]
        ph, pw = int(la["attrs"]["height"]), int(la["attrs"]["width"])
        gh, gw = h // ph, w // pw
        n = la["name"]
        r = self._reshape(f"{n}/grid", ins[0], [1, gh, ph, gw, pw, c])            # NHWC -> 6-D
        t = self._transpose(f"{n}/order", r, [0, 1, 3, 5, 2, 4], [1, gh, gw, c, ph, pw])
        self.op(self.s.BuiltinOperator.RESHAPE, [t, self._i32(f"{n}.shape", [1, gh * gw, c * ph * pw])], [out],
                *self.options("ReshapeOptions", newShape=[1, gh * gw, c * ph * pw]))

    def op_token_dense(self, la, ins, out, act):
        p = self.m.arrays
        self._fc(la["name"], ins[0], p[la["params"]["weight"]], p[la["params"]["bias"]], None, out=out)

    def op_layernorm(self, la, ins, out, act):
        from hilkit.models.functional import LAYERNORM_EPS

        B, n = self.s.BuiltinOperator, la["name"]
        t, d = self.m.shapes[la["name"]]
        full, red = [1, t, d], [1, t, 1]
        mu = self._mean_last(f"{n}/mean", ins[0], red)
        dev = self._binary(B.SUB, f"{n}/dev", ins[0], mu, full)
        sq = self._binary(B.MUL, f"{n}/sq", dev, dev, full)
        var = self._mean_last(f"{n}/var", sq, red)
        ve = self._binary(B.ADD, f"{n}/var_eps", var, self.const(f"{n}.eps", np.array([LAYERNORM_EPS])), red)
        rs = self.tensor(f"{n}/rsqrt", red)
        self.op(B.RSQRT, [ve], [rs])
        nrm = self._binary(B.MUL, f"{n}/norm", dev, rs, full)
        sc = self._binary(B.MUL, f"{n}/scaled", nrm, self.const(f"{n}.weight", self.m.arrays[la["params"]["weight"]]),
                          full)
        self.op(B.ADD, [sc, self.const(f"{n}.bias", self.m.arrays[la["params"]["bias"]])], [out],
                *self.options("AddOptions"))

    def op_attention(self, la, ins, out, act):
        B, n, p = self.s.BuiltinOperator, la["name"], self.m.arrays
        t, d = self.m.shapes[la["name"]]
        h = int(la["attrs"]["heads"])
        dh = d // h
        qkv = self._fc(f"{n}/qkv", ins[0], p[la["params"]["qkv_weight"]], p[la["params"]["qkv_bias"]], [1, t, 3 * d])
        parts = [self.tensor(f"{n}/{k}", [1, t, d]) for k in "qkv"]
        self.op(B.SPLIT, [self._i32(f"{n}.split_axis", 2), qkv], parts, *self.options("SplitOptions", numSplits=3))
        q, k, v = (self._transpose(f"{n}/{c}_heads", self._reshape(f"{n}/{c}_split", x, [1, t, h, dh]),
                                   [0, 2, 1, 3], [1, h, t, dh]) for c, x in zip("qkv", parts))
        s = self.tensor(f"{n}/scores", [1, h, t, t])
        self.op(B.BATCH_MATMUL, [q, k], [s], *self.options("BatchMatMulOptions", adjX=False, adjY=True))
        s2 = self._binary(B.MUL, f"{n}/scaled", s, self.const(f"{n}.scale", np.array([1.0 / math.sqrt(dh)])),
                          [1, h, t, t])
        pr = self.tensor(f"{n}/probs", [1, h, t, t])
        self.op(B.SOFTMAX, [s2], [pr], *self.options("SoftmaxOptions", beta=1.0))
        o = self.tensor(f"{n}/context", [1, h, t, dh])
        self.op(B.BATCH_MATMUL, [pr, v], [o], *self.options("BatchMatMulOptions", adjX=False, adjY=False))
        o = self._reshape(f"{n}/merged", self._transpose(f"{n}/tokens", o, [0, 2, 1, 3], [1, t, h, dh]), [1, t, d])
        self._fc(f"{n}/out", o, p[la["params"]["out_weight"]], p[la["params"]["out_bias"]], None, out=out)

    def op_token_mean(self, la, ins, out, act):
        self.op(self.s.BuiltinOperator.MEAN, [ins[0], self._i32(la["name"] + ".axes", [1])], [out],
                *self.options("ReducerOptions", keepDims=False))
