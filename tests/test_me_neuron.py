"""The ME neuron's device model: derived quantities, the stochastic LLG (thermal equilibrium from
the fluctuation-dissipation field, the mean first-passage time of Brown's 1-D Fokker-Planck
equation), the fitted Neel-Brown model against the sLLG, and the energy figures."""
from __future__ import annotations

import numpy as np
import pytest

from hilkit.models import me_neuron as M

DEV = M.NOMINAL


def test_derived_quantities_follow_the_formulas():
    area = np.pi * (40e-9) ** 2 / 4
    assert DEV.c_ox == pytest.approx(M.EPS0 * 12 * area / 5e-9)
    assert DEV.c_ox == pytest.approx(2.670e-17, rel=1e-3)
    assert DEV.tau_rc == pytest.approx(DEV.r_leak * DEV.c_ox)
    # the barrier fixes the volume: Delta0 kT = Ms B_K V / 2
    assert DEV.ms * DEV.b_k * DEV.volume / 2 == pytest.approx(DEV.delta0 * M.KB * 300)
    assert float(DEV.h(DEV.v_of_h(0.7))) == pytest.approx(0.7)
    assert float(DEV.b_me(1.0)) == pytest.approx(0.1 / M.C_LIGHT / 5e-9)
    # RC charging: V(t) = I R (1 - e^-t/tau), starts at 0, tends to I R
    v = DEV.oxide_voltage([1e-9], [0.0, DEV.tau_rc, 50 * DEV.tau_rc])[0]
    assert v[0] == 0 and v[1] == pytest.approx(1e-9 * DEV.r_leak * (1 - np.exp(-1))) and v[2] == pytest.approx(1e-9 * DEV.r_leak)
    # variation: C through eps_r (field per volt unchanged), barrier through the volume
    d = DEV.vary(delta0=1.1, c_ox=0.9)
    assert d.c_ox == pytest.approx(0.9 * DEV.c_ox) and d.delta0 == pytest.approx(33.0)
    assert float(d.b_me(1.0)) == float(DEV.b_me(1.0))


def test_thermal_field_gives_the_boltzmann_distribution():
    """Started exactly along -z at zero field, the sLLG relaxes to p(m_z) ~ exp(Delta0 m_z^2): this
    checks the thermal field's strength (fluctuation-dissipation) and the Heun scheme together."""
    rng = np.random.default_rng(3)
    n = 1500
    m0 = np.tile(np.array([[0.0], [0.0], [-1.0]]), (1, n))
    m = M.sllg_relax(DEV, m0, 0.0, 3e-9, rng, dt=4e-12)
    x = np.linspace(-1, 0, 200001)
    w = np.exp(DEV.delta0 * x ** 2)
    expect = np.trapezoid((1 - x ** 2) * w, x) / np.trapezoid(w, x)      # ~ 1 / Delta0
    got = (1 - m[2] ** 2).mean()
    assert got == pytest.approx(expect, rel=0.1)
    assert np.allclose((m ** 2).sum(axis=0), 1.0)
    # the analytic sampler draws the same distribution
    s = M.sample_equilibrium(DEV, 20000, rng)
    assert (1 - s[2] ** 2).mean() == pytest.approx(expect, rel=0.05) and s[2].max() < 0


def fokker_planck_mfpt(dev, h: float, threshold: float = 0.0, n: int = 200001) -> float:
    """Exact mean first-passage time (s) of the axially symmetric macrospin from the zero-field
    Boltzmann distribution of the down well to m_z = threshold under the reduced field h: Brown's
    1-D Fokker-Planck equation in x = m_z, dW/dt = d/dx [(1 - x^2) (dW/dx + W dU/dx)] / (2 tau_N),
    U = E / kT = -Delta0 (x^2 + 2 h x), 1 / (2 tau_N) = g alpha kT / (Ms V), reflecting at x = -1,
    absorbing at the threshold. By quadrature of
        tau(x0) = 2 tau_N int_x0^b dy e^U(y) / (1 - y^2) int_-1^y e^-U(z) dz
    averaged over x0 ~ e^(Delta0 x0^2) on [-1, 0] (so x0 < y weighs by that density's CDF)."""
    D = dev.delta0
    diff = M.GAMMA / (1 + dev.alpha ** 2) * dev.alpha * dev.kt / (dev.ms * dev.volume)
    y = np.linspace(-1.0, threshold, n)

    def cumulative(f):
        return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(y))])

    U = -D * (y * y + 2 * h * y)
    inner = cumulative(np.exp(-U - D))                 # e^-D and e^+D below keep both in range
    z = np.linspace(-1.0, 0.0, n)
    cdf = cumulative(np.exp(D * (y * y - 1))) / np.trapezoid(np.exp(D * (z * z - 1)), z)
    f = np.zeros(n)
    f[1:] = np.exp(U[1:] + D) * np.minimum(cdf[1:], 1.0) * inner[1:] / (1 - y[1:] ** 2)   # -> 0 at y = -1
    return float(np.trapezoid(f, y) / diff)


def sllg_mean_first_passage(seed: int, h: float = 0.6, n: int = 1500, t_max: float = 700e-9) -> tuple[float, float]:
    """(mean first-passage time of n sLLG macrospins, fraction still unswitched at t_max); an
    unswitched trial counts as t_max (t_max ~ 6 mean times: the mean is then low by ~0.2 %)."""
    ts = M.sllg_first_passage(DEV, h * DEV.b_k, t_max, n, np.random.default_rng(seed), dt=4e-12)
    return float(np.minimum(ts, t_max).mean()), float(np.isinf(ts).mean())


def test_fokker_planck_quadrature():
    """The quadrature converges, and at h = 0.6 (a 4.8 kT barrier) Brown's high-barrier asymptote
    r = alpha g B_K sqrt(D/pi) (1 - h^2)(1 - h) e^-D(1-h)^2 is ~1.3x the exact rate: not the
    reference to test the sLLG against at this barrier."""
    tau = fokker_planck_mfpt(DEV, 0.6)
    assert fokker_planck_mfpt(DEV, 0.6, n=50001) == pytest.approx(tau, rel=1e-6)
    g = M.GAMMA / (1 + DEV.alpha ** 2)
    h = 0.6
    brown = DEV.alpha * g * DEV.b_k * np.sqrt(DEV.delta0 / np.pi) * (1 - h * h) * (1 - h) * np.exp(-DEV.delta0 * (1 - h) ** 2)
    assert 1.2 < brown * tau < 1.4
    # a stronger field (lower barrier) switches sooner; a lower threshold is reached sooner
    assert fokker_planck_mfpt(DEV, 0.7) < tau and fokker_planck_mfpt(DEV, 0.6, threshold=-0.3) < tau


@pytest.mark.slow
def test_sllg_mean_first_passage_matches_fokker_planck():
    """h = 0.6: the sLLG's mean first-passage time to m_z = 0 is within 10 % of the exact 1-D
    Fokker-Planck value (1500 trials: standard error ~2.6 %; over seeds 0-4 the ratio was
    0.98-1.06 and 0.954 for this seed, docs/me-neuron.md)."""
    tau = fokker_planck_mfpt(DEV, 0.6)
    mean, unswitched = sllg_mean_first_passage(5)
    assert unswitched < 0.01
    assert mean == pytest.approx(tau, rel=0.10), mean / tau


def test_fitted_model_agrees_with_the_sllg_on_a_charging_neuron():
    """A neuron charged by a constant current (a drive the fit never saw): the shipped fit's
    probability is within 0.05 (plus 3 standard errors of 1000 trials) of the sLLG's."""
    rng = np.random.default_rng(11)
    n, current = 1000, 1.0e-9
    pulses = np.array([30e-9, 33e-9, 36e-9])
    field = lambda t: DEV.b_me(DEV.oxide_voltage(current, t))   # noqa: E731
    ts = M.sllg_first_passage(DEV, field, pulses[-1], n, rng, dt=4e-12)
    p_sllg = (ts[:, None] <= pulses[None]).mean(axis=0)
    p_fit = M.FITTED.p_pulse(DEV, [current], pulses)[0]
    se = np.sqrt(np.maximum(p_sllg * (1 - p_sllg), 1 / n) / n)
    assert np.all(np.abs(p_fit - p_sllg) <= 0.05 + 3 * se), (p_sllg, p_fit)
    assert p_sllg[0] < 0.9 and p_sllg[-1] > 0.1     # the points are inside the stochastic range


def test_fit_recovers_known_parameters():
    truth = M.NeelBrown(2e7, 2.9, -1.5, 0.05, 30.0, 0.8)
    h = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    t = np.array([5e-9, 10e-9, 30e-9, 60e-9, 100e-9])
    got = M.fit_neel_brown(DEV, [(h, t, truth.p_const(DEV, h, t, n_grid=400), 30.0)], n_grid=400)
    assert got.fit_info["max_abs_residual"] < 1e-4
    assert np.allclose(got.p_const(DEV, h, t, n_grid=400), truth.p_const(DEV, h, t, n_grid=400), atol=1e-4)


def test_rate_model_properties():
    m = M.FITTED
    h = np.linspace(0, 1.5, 31)
    r = m.rate(h, DEV.delta0)
    assert np.all(np.diff(r) >= 0) and np.all(r[h >= 1] == r[-1])      # clipped at h = 1
    assert m.rate(0.0, DEV.delta0) * 1.0 < 1e-3                          # no spontaneous firing at 0 V
    v50 = m.v50(DEV)
    assert float(m.p_step(DEV, v50)) == pytest.approx(0.5, abs=1e-9)
    assert m.rate(0.7, 0.9 * DEV.delta0) > m.rate(0.7, DEV.delta0)      # a lower barrier switches sooner
    # the barrier change enters as the exact (Delta - D)(1 - h)^2
    assert m.rate(0.7, 33.0) / m.rate(0.7, 30.0) == pytest.approx(np.exp(-3.0 * 0.09))
    p = m.p_pulse(DEV, [0.3e-9, 0.6e-9], [10e-9, 50e-9, 100e-9])
    assert p.shape == (2, 3) and np.all(np.diff(p, axis=0) > 0) and np.all(np.diff(p, axis=1) > 0)
    # a field switched on at t = 0 acts through the lag: later times approach the steady rate
    pc = m.p_const(DEV, [0.8], [50e-9, 100e-9])[0]
    steady = m.rate(0.8, DEV.delta0)
    assert -np.log1p(-pc[1]) + np.log1p(-pc[0]) == pytest.approx(steady * 50e-9, rel=1e-3)
    assert pc[0] < -np.expm1(-steady * 50e-9)
    assert m.tau_m(DEV, 0.5) == pytest.approx(2 * m.tau_m(DEV, 0.0)) and m.tau_m(DEV, 2.0) == m.tau_m(DEV, 0.9)


def test_energy_per_spike():
    e = M.energy(DEV)
    v50 = M.FITTED.v50(DEV)
    assert e.charge == pytest.approx(DEV.c_ox * v50 ** 2)
    assert e.reset == pytest.approx(DEV.c_ox * float(DEV.v_of_h(DEV.h_reset)) ** 2)
    assert e.read == pytest.approx(0.1 * 10e-6 * 1e-9)
    assert 1e-18 < e.per_spike < 1e-15                  # attojoules to femtojoules
    assert M.CMOS_LIF_STEP_J > 100 * (e.read + e.per_spike)
    d = M.describe()
    assert d["c_ox_f"] == DEV.c_ox and d["energy"]["per_spike_j"] == e.per_spike
