"""The ME neuron's device model: derived quantities, the stochastic LLG (thermal equilibrium from
the fluctuation-dissipation field, Brown's escape rate), the fitted Neel-Brown model against the
sLLG, and the energy figures."""
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


def test_escape_rate_matches_brown_at_a_high_barrier():
    """h = 0.6 leaves a 4.8 kT barrier: the sLLG's switching rate is within 30 % of Brown's
    axially-symmetric asymptote r = alpha g B_K sqrt(D/pi) (1 - h^2)(1 - h) e^-D(1-h)^2."""
    rng = np.random.default_rng(5)
    n, t = 1500, 20e-9
    ts = M.sllg_first_passage(DEV, 0.6 * DEV.b_k, t, n, rng, dt=4e-12)
    p = np.isfinite(ts).mean()
    rate = -np.log1p(-p) / t
    g = M.GAMMA / (1 + DEV.alpha ** 2)
    h = 0.6
    brown = DEV.alpha * g * DEV.b_k * np.sqrt(DEV.delta0 / np.pi) * (1 - h * h) * (1 - h) * np.exp(-DEV.delta0 * (1 - h) ** 2)
    assert rate == pytest.approx(brown, rel=0.3)
    assert np.all(ts[np.isfinite(ts)] <= t)


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
