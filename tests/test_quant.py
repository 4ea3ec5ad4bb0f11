"""core/quant.py's integer primitives against independent plain-Python-int implementations of their
definitions (docs/references.md "int8"), on exhaustive grids, edge values and large random sets, plus
hand-worked values. The ops built on them are checked against TFLite Micro in test_int8_ref.py."""
import math

import numpy as np
import pytest

from hilkit.core import quant as q

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ---------------------------------------------------------------- definitions, as plain Python ints
def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    """real = n / 2^k exactly (a double); q = real / 2^shift in [0.5, 1); M = q * 2^31 rounded half
    away from zero; M == 2^31 -> 2^30, shift + 1; shift < -31 -> (0, 0). Positive reals."""
    if real == 0:
        return 0, 0
    n, d = float(real).as_integer_ratio()
    nb, k = n.bit_length(), d.bit_length() - 1
    shift = nb - k
    m = n << (31 - nb) if nb <= 31 else (n + (1 << (nb - 32))) >> (nb - 31)
    if m == 1 << 31:
        m, shift = m >> 1, shift + 1
    if shift < -31:
        return 0, 0
    return m, shift


def ref_srdhm(a: int, b: int) -> int:
    """round(a * b / 2^31), halves up (toward +inf); INT32_MIN * INT32_MIN saturates."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31


def ref_rdbpot(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, halves away from zero."""
    if e == 0:
        return x
    mag = (abs(x) + (1 << (e - 1))) >> e
    return mag if x >= 0 else -mag


def ref_wrap32(x: int) -> int:
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def ref_mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(ref_wrap32(x << left), m), right)


SPECIAL = sorted({0, 1, -1, 2, -2, 3, -3, INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1}
                 | {s * ((1 << k) + d) for k in range(1, 31) for d in (-1, 0, 1) for s in (1, -1)})


# ---------------------------------------------------------------- quantize_multiplier
def test_quantize_multiplier_hand_worked():
    assert q.quantize_multiplier(0.0) == (0, 0)
    assert q.quantize_multiplier(0.5) == (1 << 30, 0)
    assert q.quantize_multiplier(1.0) == (1 << 30, 1)
    assert q.quantize_multiplier(0.75) == (3 << 29, 0)
    assert q.quantize_multiplier(2.0 ** -31) == (1 << 30, -30)
    assert q.quantize_multiplier(2.0 ** -32) == (1 << 30, -31)
    assert q.quantize_multiplier(2.0 ** -33) == (0, 0)            # shift -32 < -31: flushed to zero
    assert q.quantize_multiplier(1e-10) == (0, 0)
    # q = 1 - 2^-33 rounds to 2^31: halved, shift + 1
    assert q.quantize_multiplier((1 - 2.0 ** -33) * 4) == (1 << 30, 3)
    # q = 1 - 2^-31 is exact: stays just below 2^31
    assert q.quantize_multiplier(1 - 2.0 ** -31) == (INT32_MAX, 0)
    # q * 2^31 = k + 0.5 rounds away from zero (Python's round() would give the even k)
    assert q.quantize_multiplier((2 * 0x40000000 + 1) / 2.0 ** 32) == (0x40000001, 0)
    assert q.quantize_multiplier(-0.75) == (-(3 << 29), 0)


def test_quantize_multiplier_edges_and_random():
    rng = np.random.default_rng(0)
    vals = [2.0 ** k for k in range(-45, 40)]                                   # exact powers of two
    vals += [(1 - 2.0 ** -e) * 2.0 ** k for e in (31, 32, 33, 34, 40, 52) for k in range(-35, 10)]  # near 2^31
    vals += [((1 << 31) + 2 * j + 1) / 2.0 ** (32 + k) for j in range(-50, 50) for k in range(5)]  # ties
    vals += list(np.exp(rng.uniform(math.log(1e-12), math.log(1e6), 20000)))  # log-uniform
    vals += list(rng.uniform(0, 1, 5000).astype(np.float32).astype(np.float64))  # float32 scales
    tiny = [v for v in vals if v < 2.0 ** -32]
    assert len(tiny) > 100                                                      # the flush path is exercised
    for v in vals:
        assert q.quantize_multiplier(v) == ref_quantize_multiplier(v), v
    m, s = q.quantize_multipliers(np.array(vals[:2000]))
    assert m.dtype == np.int32 and s.dtype == np.int32
    assert list(zip(m.tolist(), s.tolist())) == [ref_quantize_multiplier(v) for v in vals[:2000]]


def test_multiplier_range_checks():
    with pytest.raises(ValueError):
        q.quantize_multiplier_smaller_than_one(1.0)
    with pytest.raises(ValueError):
        q.quantize_multiplier_greater_than_one(0.9)
    m, s = q.quantize_multiplier_smaller_than_one(0.3)
    assert s <= 0 and (m, s) == ref_quantize_multiplier(0.3)


# ---------------------------------------------------------------- srdhm
def test_srdhm_hand_worked():
    assert int(q.srdhm(INT32_MIN, INT32_MIN)) == INT32_MAX
    assert int(q.srdhm(INT32_MIN, INT32_MAX)) == -INT32_MAX
    assert int(q.srdhm(1 << 30, 1 << 30)) == 1 << 29
    assert int(q.srdhm(1 << 30, 1)) == 1          # +0.5 -> 1
    assert int(q.srdhm(-(1 << 30), 1)) == 0       # -0.5 -> 0 (ties toward +inf)
    assert int(q.srdhm(-(3 << 30), 1)) == -1      # -1.5 -> -1
    assert int(q.srdhm(3 << 29, 1)) == 1          # 0.75 -> 1


def test_srdhm_special_grid_and_random():
    a = np.array(SPECIAL, np.int64)
    A, B = np.meshgrid(a, a)
    got = q.srdhm(A, B)
    assert got.dtype == np.int32
    want = np.array([[ref_srdhm(int(x), int(y)) for x, y in zip(ra, rb)] for ra, rb in zip(A, B)])
    np.testing.assert_array_equal(got, want)
    rng = np.random.default_rng(1)
    x = rng.integers(INT32_MIN, INT32_MAX, 100000, endpoint=True)
    y = rng.integers(INT32_MIN, INT32_MAX, 100000, endpoint=True)
    # ties: a * b = odd * 2^30
    odd = rng.integers(-(1 << 20), 1 << 20, 5000) * 2 + 1
    x = np.concatenate([x, odd, -odd])
    y = np.concatenate([y, np.full(10000, 1 << 30)])
    want = np.array([ref_srdhm(int(u), int(v)) for u, v in zip(x, y)])
    np.testing.assert_array_equal(q.srdhm(x, y), want)


# ---------------------------------------------------------------- rounding_divide_by_pot
def test_rdbpot_hand_worked():
    assert [int(q.rounding_divide_by_pot(v, 1)) for v in (-5, -3, -1, 1, 3, 5)] == [-3, -2, -1, 1, 2, 3]
    assert int(q.rounding_divide_by_pot(-6, 2)) == -2      # -1.5 -> -2
    assert int(q.rounding_divide_by_pot(-5, 2)) == -1      # -1.25 -> -1
    assert int(q.rounding_divide_by_pot(INT32_MIN, 31)) == -1
    assert int(q.rounding_divide_by_pot(INT32_MAX, 31)) == 1
    assert int(q.rounding_divide_by_pot(7, 0)) == 7
    with pytest.raises(ValueError):
        q.rounding_divide_by_pot(1, 32)


def test_rdbpot_exhaustive_small_and_random():
    e = np.arange(32)
    x = np.arange(-4096, 4097)
    X, E = np.meshgrid(x, e)
    want = np.vectorize(ref_rdbpot)(X, E)
    np.testing.assert_array_equal(q.rounding_divide_by_pot(X, E), want)
    rng = np.random.default_rng(2)
    x = rng.integers(INT32_MIN, INT32_MAX, 100000, endpoint=True)
    e = rng.integers(0, 32, 100000)
    # negative ties at every exponent: -(2k + 1) * 2^(e - 1)
    k = rng.integers(0, 1000, 3100)
    et = np.repeat(np.arange(1, 32), 100)
    tie = -(2 * k + 1) << (et - 1)
    keep = tie >= INT32_MIN
    x, e = np.concatenate([x, tie[keep], np.array(SPECIAL)]), np.concatenate([e, et[keep], np.full(len(SPECIAL), 31)])
    want = np.array([ref_rdbpot(int(u), int(v)) for u, v in zip(x, e)])
    np.testing.assert_array_equal(q.rounding_divide_by_pot(x, e), want)


# ---------------------------------------------------------------- multiply_by_quantized_multiplier, requantize
def test_mbqm_random_against_definition():
    rng = np.random.default_rng(3)
    n = 60000
    m = rng.integers(1 << 30, 1 << 31, n)
    shift = rng.integers(-31, 9, n)
    # accumulators of every size, some large enough for x << left to wrap as int32 does
    x = (rng.integers(-(1 << 31), 1 << 31, n) >> rng.integers(0, 31, n)).astype(np.int64)
    want = np.array([ref_mbqm(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift)])
    np.testing.assert_array_equal(q.multiply_by_quantized_multiplier(x, m, shift), want)


def test_mbqm_per_channel_broadcast_and_requantize():
    rng = np.random.default_rng(4)
    acc = rng.integers(-200000, 200000, (2, 3, 5, 4))
    m, s = q.quantize_multipliers([0.0007, 0.0011, 0.002, 0.3])
    got = q.multiply_by_quantized_multiplier(acc, m, s)
    for c in range(4):
        np.testing.assert_array_equal(got[..., c], q.multiply_by_quantized_multiplier(acc[..., c], int(m[c]), int(s[c])))
    y = q.requantize(acc, m, s, -5, -100, 60)
    assert y.dtype == np.int8 and y.min() >= -100 and y.max() <= 60
    np.testing.assert_array_equal(y, np.clip(got.astype(np.int64) - 5, -100, 60))


# ---------------------------------------------------------------- activation range, quantize
def test_activation_range_hand_worked():
    assert q.activation_range("none", 0.1, 3) == (-128, 127)
    assert q.activation_range("relu", 0.1, -20) == (-20, 127)
    assert q.activation_range("relu", 0.1, -128) == (-128, 127)
    assert q.activation_range("relu6", 0.05, 10) == (10, 127)          # 6 / 0.05 = 120 -> 130 -> 127
    assert q.activation_range("relu6", 0.1, -128) == (-128, -68)       # round(60) - 128
    assert q.activation_range("relu_n1_to_1", 0.01, 0) == (-100, 100)
    with pytest.raises(ValueError):
        q.activation_range("tanh", 0.1, 0)


def test_quantize_rounds_half_away_in_float32():
    scale = np.float32(0.25)
    x = np.float32([0.125, 0.375, -0.125, -0.375, 0.0, 31.9, -32.2, 100.0])
    assert q.quantize(x, scale, 0).tolist() == [1, 2, -1, -2, 0, 127, -128, 127]
    # the largest float32 below 0.5 must not round up (floorf(x + 0.5f) would)
    assert q.quantize(np.float32([0.49999997]), np.float32(1.0), 0).tolist() == [0]
    assert q.dequantize(np.int8([-128, 0, 127]), np.float32(0.5), -1).tolist() == [-63.5, 0.5, 64.0]


# ---------------------------------------------------------------- gemmlowp fixed point: accuracy
def test_fixed_point_functions_track_the_real_functions():
    rng = np.random.default_rng(5)
    a = -rng.integers(0, 1 << 31, 20000)                   # Q5.26 values in [-32, 0]
    e = q.exp_on_negative_values(a, 5) / 2.0 ** 31
    assert np.abs(e - np.exp(a / 2.0 ** 26)).max() < 5e-7      # a few Q0.31 LSB per step
    assert int(q.exp_on_negative_values(0, 5)) == INT32_MAX
    x = rng.integers(0, 1 << 31, 20000)                    # Q0.31 in [0, 1)
    r = q.one_over_one_plus_x_for_x_in_0_1(x) / 2.0 ** 31
    assert np.abs(r - 1 / (1 + x / 2.0 ** 31)).max() < 1e-8
    v = rng.integers(-(1 << 31), 1 << 31, 20000)           # Q4.27 in [-16, 16)
    s = q.logistic_fixed(v, 4) / 2.0 ** 31
    assert np.abs(s - 1 / (1 + np.exp(-v / 2.0 ** 27))).max() < 1e-7
    recip, bits = q.get_reciprocal(np.array([3 << 19, 1 << 19, 1000 << 19]), 12)   # Q12.19: 3, 1, 1000
    np.testing.assert_allclose(recip / 2.0 ** 31 / 2.0 ** bits, [1 / 3, 1, 1 / 1000], rtol=1e-8)
