"""Magneto-electric (ME) leaky integrate-and-fire neuron: the device model (docs/me-neuron.md).

The neuron of Jaiswal et al. (IEEE TED 2017, arXiv 1609.09158): an ME oxide capacitor
leaky-integrates the synaptic current, tau dV/dt = -V + R I; its voltage makes an effective
magnetic field B_ME = alpha_ME V / t_ox on a ferromagnet (FM) with perpendicular anisotropy; the
field lowers the FM's energy barrier and thermal noise makes it switch, i.e. fire, at random; an
MTJ reads the FM; after a switch the oxide is discharged and the FM is written back (reset).

Two models of the switching, both here:
  - `sllg_first_passage`: the stochastic Landau-Lifshitz-Gilbert equation of one macrospin,
    integrated with Heun's scheme (Stratonovich), with Brown's thermal field from the
    fluctuation-dissipation relation, vectorised over many independent trials;
  - `NeelBrown`: a rate model, r = f0 g(h) exp(-Delta_eff(h)), h = B_ME / B_K, with a first-order
    lag of the magnet behind the field, fitted to the sLLG (`fit_neel_brown`; the shipped constants
    come from bench/me/characterise.py). A pulse switches with P = 1 - exp(-integral of r dt).

Units are SI throughout (V, A, s, F, ohm, T, A/m, m, J). Every parameter of `Device` says where
its value comes from; "assumption" means chosen here, not taken from the paper (whose exact device
values could not be checked for this kit).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

# CODATA 2018
KB = 1.380649e-23            # J/K
GAMMA = 1.76085963023e11     # rad/(s T), electron gyromagnetic ratio
EPS0 = 8.8541878128e-12      # F/m
C_LIGHT = 299792458.0        # m/s


@dataclass(frozen=True)
class Device:
    """One ME-LIF neuron. Defaults are the nominal device of docs/me-neuron.md."""

    # ME oxide (the membrane capacitor)
    alpha_me: float = 0.1 / C_LIGHT   # s/m, ME coefficient: B_ME = alpha_ME E. Assumption: the 0.1/c order
    #                                   used by ME-switching device proposals (bulk Cr2O3 is ~1e-12 s/m).
    t_ox: float = 5e-9                # m, oxide thickness (assumption)
    eps_r: float = 12.0               # relative permittivity (assumption: Cr2O3-like, ~12)
    diameter: float = 40e-9           # m, circular pillar shared by oxide and FM (assumption)
    r_leak: float = 1.18e10           # ohm, leak resistance in parallel with the oxide (assumption,
    #                                   chosen so that tau = R C = 315 ns, i.e. a 2^-5 leak per 10 ns step)
    # ferromagnet (macrospin)
    ms: float = 1.0e6                 # A/m, saturation magnetisation (assumption: CoFe(B)-like, 1.0-1.2e6)
    b_k: float = 0.1                  # T, mu0 H_K of the effective perpendicular anisotropy (assumption)
    alpha: float = 0.1                # Gilbert damping (assumption; thin CoFeB next to a heavy/oxide layer
    #                                   is 0.01-0.1)
    delta0: float = 30.0              # energy barrier at zero field, in kT (assumption; sets the FM volume)
    temperature: float = 300.0        # K
    # operation
    dt_step: float = 10e-9            # s, one network time step (assumption)
    v_read: float = 0.1               # V, MTJ read bias (assumption)
    i_read: float = 10e-6             # A, MTJ read current (assumption: ~10 kohm MTJ)
    t_read: float = 1e-9              # s, read pulse per step (assumption)
    h_reset: float = 1.3              # B_ME / B_K of the reset pulse (above 1: no barrier, deterministic)

    # -- derived quantities
    @property
    def area(self) -> float:
        return np.pi * self.diameter ** 2 / 4

    @property
    def c_ox(self) -> float:
        """F, the oxide's capacitance eps0 eps_r A / t_ox."""
        return EPS0 * self.eps_r * self.area / self.t_ox

    @property
    def tau_rc(self) -> float:
        """s, the membrane time constant R C."""
        return self.r_leak * self.c_ox

    @property
    def kt(self) -> float:
        return KB * self.temperature

    @property
    def volume(self) -> float:
        """m^3, the FM volume that gives the barrier: Delta0 kT = K V = Ms B_K V / 2."""
        return 2 * self.delta0 * self.kt / (self.ms * self.b_k)

    @property
    def t_fm(self) -> float:
        """m, FM thickness for that volume on the pillar's area."""
        return self.volume / self.area

    def b_me(self, v):
        """T, the ME effective field of oxide voltage v (V): alpha_ME v / t_ox."""
        return self.alpha_me * np.asarray(v, np.float64) / self.t_ox

    def h(self, v):
        """The reduced field B_ME / B_K of oxide voltage v."""
        return self.b_me(v) / self.b_k

    def v_of_h(self, h):
        return np.asarray(h, np.float64) * self.b_k * self.t_ox / self.alpha_me

    def oxide_voltage(self, current, t):
        """V(t) of the RC integrator driven by a constant current from V(0) = 0: I R (1 - e^-t/tau)."""
        return np.multiply.outer(np.asarray(current, np.float64), self.r_leak * -np.expm1(-np.asarray(t) / self.tau_rc))

    def leak_factor(self) -> float:
        """exp(-dt_step / tau): the membrane kept over one step."""
        return float(np.exp(-self.dt_step / self.tau_rc))

    def vary(self, delta0: float = 1.0, c_ox: float = 1.0) -> "Device":
        """A device with the barrier and the oxide capacitance scaled (C through the permittivity, so the
        field per volt is unchanged and tau = R C scales with it)."""
        return replace(self, delta0=self.delta0 * delta0, eps_r=self.eps_r * c_ox)


NOMINAL = Device()


# ---------------------------------------------------------------- stochastic LLG
def thermal_sigma(dev: Device, dt: float) -> float:
    """T, the standard deviation of each component of Brown's thermal field over a step dt:
    <B_i(t) B_j(t')> = 2 alpha kT / (gamma Ms V) delta_ij delta(t - t') (fluctuation-dissipation)."""
    return float(np.sqrt(2 * dev.alpha * dev.kt / (GAMMA * dev.ms * dev.volume * dt)))


def sample_equilibrium(dev: Device, n: int, rng: np.random.Generator) -> np.ndarray:
    """n magnetisations [3, n] drawn from the Boltzmann distribution of the down well at zero field,
    p(m_z) ~ exp(Delta0 m_z^2) on m_z < 0, azimuth uniform (rejection from an exponential in
    z = 1 + m_z: the target over the proposal is exp(-Delta0 z (1 - z)) <= 1)."""
    z = np.empty(0)
    while len(z) < n:
        k = 2 * (n - len(z)) + 16
        cand = rng.exponential(1 / dev.delta0, k)
        cand = cand[cand < 1]
        keep = rng.random(len(cand)) < np.exp(-dev.delta0 * cand * (1 - cand))
        z = np.concatenate([z, cand[keep]])
    mz = z[:n] - 1
    phi = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(np.maximum(0.0, 1 - mz * mz))
    return np.stack([s * np.cos(phi), s * np.sin(phi), mz])


def _llg_rhs(mx, my, mz, bx, by, bz, g, a):
    """dm/dt = -g [m x B + alpha m x (m x B)] (the Landau-Lifshitz form of Gilbert's equation,
    g = gamma / (1 + alpha^2))."""
    cx = my * bz - mz * by
    cy = mz * bx - mx * bz
    cz = mx * by - my * bx
    dx = my * cz - mz * cy
    dy = mz * cx - mx * cz
    dz = mx * cy - my * cx
    return -g * (cx + a * dx), -g * (cy + a * dy), -g * (cz + a * dz)


def heun_step(m, b_me, b_k, sigma, dev: Device, dt: float, rng: np.random.Generator):
    """One Heun (predictor-corrector) step of the sLLG for macrospins m = (mx, my, mz) under the
    field b_me (T, +z), the anisotropy field b_k m_z and Brown's thermal field of std sigma (T per
    component; the same draw in both stages, which makes the scheme converge to the Stratonovich
    solution that the fluctuation-dissipation relation assumes); m is renormalised afterwards.
    b_me may be a pair (at t, at t + dt) for a field that changes within the step."""
    g = GAMMA / (1 + dev.alpha ** 2)
    a = dev.alpha
    mx, my, mz = m
    b0, b1 = b_me if isinstance(b_me, tuple) else (b_me, b_me)
    hx, hy, hz = rng.standard_normal((3, len(mx))) * sigma
    f1 = _llg_rhs(mx, my, mz, hx, hy, hz + b_k * mz + b0, g, a)
    px, py, pz = mx + dt * f1[0], my + dt * f1[1], mz + dt * f1[2]
    f2 = _llg_rhs(px, py, pz, hx, hy, hz + b_k * pz + b1, g, a)
    mx = mx + 0.5 * dt * (f1[0] + f2[0])
    my = my + 0.5 * dt * (f1[1] + f2[1])
    mz = mz + 0.5 * dt * (f1[2] + f2[2])
    norm = 1.0 / np.sqrt(mx * mx + my * my + mz * mz)
    return mx * norm, my * norm, mz * norm


def _per_trial(dev: Device, n: int, dt: float, devices: dict | None):
    """Per-trial anisotropy field and thermal-field std (device-to-device variation of the barrier
    scales the volume, so sigma ~ V^-1/2; of B_K, the anisotropy field)."""
    bk = np.full(n, dev.b_k)
    sig = np.full(n, thermal_sigma(dev, dt))
    if devices is not None:
        if "b_k" in devices:
            bk = np.asarray(devices["b_k"], np.float64) * np.ones(n)
        if "delta0" in devices:
            sig = sig * np.sqrt(dev.delta0 / (np.asarray(devices["delta0"], np.float64) * np.ones(n)))
    return bk, sig


def sllg_relax(dev: Device, m0: np.ndarray, b_me: float, t: float, rng: np.random.Generator, *,
               dt: float = 2e-12) -> np.ndarray:
    """Integrate n macrospins [3, n] for a time t under a constant field; returns m [3, n]."""
    m = tuple(np.array(m0, np.float64))
    bk, sig = _per_trial(dev, m[0].shape[0], dt, None)
    for _ in range(int(round(t / dt))):
        m = heun_step(m, b_me, bk, sig, dev, dt, rng)
    return np.stack(m)


def sllg_first_passage(dev: Device, b_me, t_max: float, n: int, rng: np.random.Generator, *,
                       dt: float = 2e-12, m0: np.ndarray | None = None, threshold: float = 0.0,
                       devices: dict | None = None) -> np.ndarray:
    """First time (s) each of n macrospins, started in the down well (Boltzmann-distributed at
    zero field unless m0 [3, n] is given), reaches m_z > threshold (np.inf if not by t_max), under
    the ME field b_me (T along +z: a number, an array [n], or a function t -> [n]). Switched
    trials leave the active set, so the cost follows the unswitched ones.

    devices: optional per-trial arrays {"b_k": [n], "delta0": [n]} for device-to-device variation."""
    m = sample_equilibrium(dev, n, rng) if m0 is None else np.array(m0, np.float64)
    bk, sig = _per_trial(dev, n, dt, devices)
    fixed = None if callable(b_me) else np.broadcast_to(np.asarray(b_me, np.float64), (n,))
    idx = np.arange(n)
    t_sw = np.full(n, np.inf)
    m = tuple(m)
    for k in range(int(round(t_max / dt))):
        t = k * dt
        if fixed is not None:
            field_ = fixed[idx]
        else:
            field_ = (np.broadcast_to(b_me(t), (n,))[idx], np.broadcast_to(b_me(t + dt), (n,))[idx])
        m = heun_step(m, field_, bk[idx], sig[idx], dev, dt, rng)
        hit = m[2] > threshold
        if hit.any():
            t_sw[idx[hit]] = t + dt
            keep = ~hit
            idx = idx[keep]
            m = tuple(c[keep] for c in m)
            if len(idx) == 0:
                break
    return t_sw


def sllg_step_cost(dev: Device, n: int, rng: np.random.Generator, dt: float = 2e-12, steps: int = 200) -> float:
    """Seconds of this machine per macrospin per Heun step (vectorised over n), measured."""
    import time
    m0 = np.tile(np.array([[0.0], [0.0], [-1.0]]), (1, n))
    t0 = time.perf_counter()
    sllg_first_passage(dev, 0.0, steps * dt, n, rng, dt=dt, m0=m0, threshold=2.0)
    return (time.perf_counter() - t0) / (steps * n)


# ---------------------------------------------------------------- the fitted rate model
H_LAG_CAP = 0.9      # the lag's slowing-down is capped at 1 / (1 - 0.9): near h = 1 the rate takes over


@dataclass(frozen=True)
class NeelBrown:
    """Neel-Brown switching rate with a field-lowered barrier, fitted to the sLLG:

        r(h, Delta) = f0 ((1 - h + eps) / (1 + eps))^p exp(-D (1 - h)^beta - (Delta - D)(1 - h)^2)

    (1/s), h = B_ME / B_K clipped to [0, 1], D = the barrier (kT) the fit was made at. f0, beta, p,
    eps are fitted; a device whose barrier Delta differs from D changes the exponent by the exact
    barrier change (Delta - D)(1 - h)^2 of this geometry. The magnet follows the field with its
    intra-well relaxation time, dh_eff/dt = (h - h_eff) / tau_m, tau_m = lag (1 + alpha^2) /
    (alpha gamma B_K (1 - h_eff)) (slowing down as the barrier vanishes, capped at h_eff = 0.9;
    lag is fitted too), and
    a waveform switches with P = 1 - exp(-integral r(h_eff) dt). Cheap: one exp per neuron and step."""

    f0: float
    beta: float
    p: float = 0.0
    eps: float = 1.0
    delta_fit: float = 30.0
    lag: float = 1.0
    fit_info: dict = field(default_factory=dict, compare=False)

    def rate(self, h, delta0):
        x = 1.0 - np.clip(np.asarray(h, np.float64), 0.0, 1.0)
        d = np.asarray(delta0, np.float64)
        pre = ((x + self.eps) / (1.0 + self.eps)) ** self.p
        return self.f0 * pre * np.exp(-self.delta_fit * x ** self.beta - (d - self.delta_fit) * x * x)

    def tau_m(self, dev: Device, h_eff):
        """s, the magnet's lag behind the field at reduced field h_eff: `lag` (fitted) times its
        intra-well relaxation time (1 + alpha^2) / (alpha gamma B_K (1 - h_eff))."""
        g = GAMMA / (1 + dev.alpha ** 2)
        return self.lag / (dev.alpha * g * dev.b_k * (1.0 - np.minimum(np.maximum(h_eff, 0.0), H_LAG_CAP)))

    def p_waveform(self, dev: Device, t, h, delta0=None) -> np.ndarray:
        """P(switched by t_k) for rows of reduced fields h [rows, len(t)] sampled on the increasing
        grid t (s, from 0; fine enough for the lag: a step of 0.1-0.2 ns)."""
        t = np.asarray(t, np.float64)
        h = np.atleast_2d(np.asarray(h, np.float64))
        d = dev.delta0 if delta0 is None else delta0
        d = np.asarray(d, np.float64).reshape(-1, 1) if np.ndim(d) else d
        he = np.empty_like(h)
        cur = np.zeros(h.shape[0])
        dts = np.diff(t, prepend=t[0])
        for k in range(len(t)):
            a = np.exp(-dts[k] / self.tau_m(dev, cur))
            cur = a * cur + (1 - a) * h[:, k]
            he[:, k] = cur
        r = self.rate(he, d)
        cum = np.concatenate([np.zeros((len(h), 1)), np.cumsum(0.5 * (r[:, 1:] + r[:, :-1]) * np.diff(t), axis=1)], axis=1)
        return -np.expm1(-cum)

    def p_const(self, dev: Device, h, t, delta0=None, n_grid: int = 1600) -> np.ndarray:
        """P(switch within each t) under constant reduced fields h switched on at t = 0: [len(h), len(t)]."""
        h = np.atleast_1d(np.asarray(h, np.float64))
        t = np.atleast_1d(np.asarray(t, np.float64))
        grid = np.linspace(0.0, t.max(), n_grid + 1)
        p = self.p_waveform(dev, grid, np.repeat(h[:, None], len(grid), axis=1), delta0)
        return np.stack([np.interp(t, grid, row) for row in p])

    def p_pulse(self, dev: Device, current, t_pulse, delta0=None, n_grid: int = 1600) -> np.ndarray:
        """P(switch) of a neuron charged from 0 V by constant currents (A) for t_pulse (s), the
        RC integrator in front of the magnet: [len(current), len(t_pulse)]."""
        t_pulse = np.atleast_1d(np.asarray(t_pulse, np.float64))
        grid = np.linspace(0.0, t_pulse.max(), n_grid + 1)
        p = self.p_waveform(dev, grid, dev.h(dev.oxide_voltage(np.atleast_1d(current), grid)), delta0)
        return np.stack([np.interp(t_pulse, grid, row) for row in p])

    def p_step(self, dev: Device, v, *, delta0=None):
        """P(fire) of one network step at oxide voltage v, quasi-static (the magnet has followed
        the voltage: h_eff = h), as the network and its tables use it."""
        d = dev.delta0 if delta0 is None else delta0
        return -np.expm1(-self.rate(dev.h(v), d) * dev.dt_step)

    def v50(self, dev: Device) -> float:
        """The oxide voltage at which one step fires with probability 1/2 (bisection in h)."""
        lo, hi = 0.0, 1.0
        if self.p_step(dev, dev.v_of_h(1.0)) < 0.5:
            raise ValueError("this device never fires with probability 1/2 in one step")
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.p_step(dev, dev.v_of_h(mid)) < 0.5 else (lo, mid)
        return float(dev.v_of_h(0.5 * (lo + hi)))

    def params(self) -> dict:
        return {"f0_per_s": self.f0, "beta": self.beta, "p": self.p, "eps": self.eps, "lag": self.lag,
                "delta_fit_kt": self.delta_fit}


def fit_neel_brown(dev: Device, runs, x0=(np.log(1e7), 3.0, -2.0, 0.1, 1.0), n_grid: int = 1600) -> NeelBrown:
    """Least squares in probability of NeelBrown.p_const to sLLG switching fractions.
    runs: [(h [k], t [m], P [k, m], delta0), ...] (constant fields switched on at t = 0)."""
    from scipy.optimize import least_squares

    def model(x):
        return NeelBrown(float(np.exp(x[0])), float(x[1]), float(x[2]), float(x[3]), dev.delta0, float(x[4]))

    def resid(x):
        m = model(x)
        return np.concatenate([(m.p_const(dev, h, t, d, n_grid) - p).ravel() for h, t, p, d in runs])

    sol = least_squares(resid, x0=list(x0), bounds=([np.log(1e5), 1.0, -6.0, 1e-3, 0.05], [np.log(1e13), 4.0, 6.0, 3.0, 5.0]))
    res = resid(sol.x)
    m = model(sol.x)
    info = {"n_points": int(len(res)), "max_abs_residual": float(np.abs(res).max()),
            "rms_residual": float(np.sqrt(np.mean(res ** 2)))}
    return NeelBrown(m.f0, m.beta, m.p, m.eps, m.delta_fit, m.lag, info)


# The fit shipped with the kit: `bench/me/characterise.py fit` on the nominal device's constant-field
# sLLG runs (results/characterise.json): max |P_fit - P_sLLG| 0.039 on the fit data; checked on runs
# it never saw (charging currents, barrier +/-10 %, network-step drives) in docs/me-neuron.md.
FITTED = NeelBrown(f0=1.65365e+07, beta=2.95871, p=-1.58646, eps=0.0384609, delta_fit=30.0, lag=0.751046,
                   fit_info={"source": "bench/me/results/characterise.json", "max_abs_residual": 0.0388})


# ---------------------------------------------------------------- energy
@dataclass(frozen=True)
class Energy:
    """Energy of the ME neuron's operations (J), each an estimate from the device parameters."""

    charge: float      # charging C to the firing voltage V_50 from a supply at V_50: C V^2
    reset: float       # the reset write (a reverse pulse at h_reset) C V_reset^2, plus discharging
    read: float        # one MTJ read (every step): V_read I_read t_read
    leak_per_v2: float  # leak dissipation of a step per volt^2 of membrane: dt / R

    @property
    def per_spike(self) -> float:
        return self.charge + self.reset

    def as_dict(self) -> dict:
        return {"charge_j": self.charge, "reset_j": self.reset, "read_j": self.read,
                "leak_j_per_v2_step": self.leak_per_v2, "per_spike_j": self.per_spike}


def energy(dev: Device, model: NeelBrown = None) -> Energy:
    model = FITTED if model is None else model
    v50 = model.v50(dev)
    v_reset = float(dev.v_of_h(dev.h_reset))
    return Energy(charge=dev.c_ox * v50 ** 2, reset=dev.c_ox * v_reset ** 2,
                  read=dev.v_read * dev.i_read * dev.t_read, leak_per_v2=dev.dt_step / dev.r_leak)


# A digital CMOS LIF neuron at 45 nm, from the per-operation table (Horowitz, ISSCC 2014): per
# neuron and step, the membrane is read and written back (8 KB SRAM, ~10 pJ per 64-bit access:
# counted as 10 pJ each), leaked (shift + subtract: 2 int32 adds, 0.1 pJ each), compared with the
# threshold (an int32 add); a spike adds the reset (an int32 add). Synapses are not the neuron's.
CMOS_LIF_STEP_J = (10.0 + 10.0 + 0.2 + 0.1) * 1e-12
CMOS_LIF_SPIKE_J = 0.1e-12
# The same without the membrane's memory traffic (only the integer operations): a lower bound, the
# way the SNN papers count synapses (0.9 pJ per accumulate, no memory).
CMOS_LIF_STEP_OPS_J = (0.2 + 0.1) * 1e-12


def describe(dev: Device = NOMINAL, model: NeelBrown = None) -> dict:
    """Every parameter and derived quantity with its unit (for reports and docs)."""
    model = FITTED if model is None else model
    e = energy(dev, model)
    return {"alpha_me_s_per_m": dev.alpha_me, "t_ox_m": dev.t_ox, "eps_r": dev.eps_r, "diameter_m": dev.diameter,
            "c_ox_f": dev.c_ox, "r_leak_ohm": dev.r_leak, "tau_rc_s": dev.tau_rc, "ms_a_per_m": dev.ms,
            "b_k_t": dev.b_k, "alpha": dev.alpha, "delta0_kt": dev.delta0, "temperature_k": dev.temperature,
            "fm_volume_m3": dev.volume, "fm_thickness_m": dev.t_fm, "dt_step_s": dev.dt_step,
            "b_me_t_per_v": float(dev.b_me(1.0)), "v50_v": model.v50(dev), "h50": float(dev.h(model.v50(dev))),
            "fit": model.params(), "energy": e.as_dict()}
