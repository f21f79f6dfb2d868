"""Virtual asteroids: samples of an orbit's uncertainty region.

Parameters are the fitted ones: the barycentric ICRF state at the solution epoch (au, au/day)
followed by the fitted non-gravitational parameters (au/day², in the solution's ``nongrav`` key
order), with the fit's covariance. Three ways of sampling:

* **Line of variations** (:func:`line_of_variations`; Milani et al. 2005, Icarus 173, 362). The
  one-parameter family ``x(σ) = x₀ + σ d`` along the direction in which the uncertainty is
  stretched by the dynamics. ``d`` is the weak direction *as seen at a later time* ``T`` (the
  first deep approach, or the middle of the horizon): with the position rows ``Φ_r`` of the
  state-transition matrix from the epoch to ``T`` (non-grav partials included), the dominant
  eigenvector ``u`` of the position covariance ``Φ_r C Φ_rᵀ`` at ``T`` is pulled back to the
  most probable epoch displacement that produces it, ``d = C Φ_rᵀ u / sqrt(uᵀ Φ_r C Φ_rᵀ u)``
  (a 1σ step along the LOV moves the position at ``T`` by 1σ along its long axis). For a
  well-observed orbit this is Milani's weak direction of the epoch covariance; unlike a pure
  epoch eigenvector it also weighs the Yarkovsky parameter by what it does to the future, and it
  does not depend on the units of the parameters. ``σ`` is the sampling coordinate reported
  with each virtual impactor. (The LOV is linear: Milani's constrained re-fit at each point is
  not done; it matters for arcs short enough that the linear region is curved.)
* **Monte Carlo** (:func:`monte_carlo`): ``x₀ + L z`` with ``z`` standard normal (seeded) and
  ``L Lᵀ = C`` from the symmetric eigen-decomposition (robust for nearly singular matrices).
* **Ranging** (:func:`ranging_samples`): the weighted grid of the systematic-ranging admissible
  region of a short arc, where the uncertainty is not a line and no covariance exists.

Bad regions are caught before anything is propagated: :func:`check_covariance` (finite,
symmetric, positive definite in correlation form) and :func:`unbound_mask` (samples hyperbolic
with respect to the Sun, or with a perihelion inside the Sun).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neodefense.constants import GM_SUN_AU3_PER_DAY2
from neodefense.dynamics import ephemeris

__all__ = [
    "SUN_RADIUS_AU",
    "VirtualAsteroids",
    "check_covariance",
    "line_of_variations",
    "log_gaussian_density",
    "lov_direction",
    "monte_carlo",
    "ranging_samples",
    "unbound_mask",
]

#: the Sun's radius (696,000 km) in au: a perihelion below it falls into the Sun
SUN_RADIUS_AU = 696_000.0 / ephemeris.AU_KM
#: smallest eigenvalue of the correlation matrix accepted as positive definite
_MIN_CORRELATION_EIGENVALUE = 1e-13


@dataclass(frozen=True)
class VirtualAsteroids:
    """Samples at one epoch: ``params`` (n, 6 + k) = state (au, au/day) + non-grav (au/day²).

    ``weights`` (n,) sum to 1 (equal for Monte Carlo and the LOV; χ² weights for ranging);
    ``sigma`` (n,) the LOV coordinate (NaN for other methods); ``nongrav_names`` the k names.
    """

    epoch_tdb_jd: float
    params: np.ndarray
    weights: np.ndarray
    sigma: np.ndarray
    nongrav_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.params.shape[0])

    @property
    def states_au(self) -> np.ndarray:
        return self.params[:, :6]

    def take(self, idx: np.ndarray) -> VirtualAsteroids:
        w = self.weights[idx]
        return VirtualAsteroids(self.epoch_tdb_jd, self.params[idx], w / max(w.sum(), 1e-300),
                                self.sigma[idx], self.nongrav_names)


def check_covariance(covariance: np.ndarray | None) -> str:
    """Empty string when ``covariance`` can be sampled, else the reason it cannot."""
    if covariance is None:
        return "no covariance"
    c = np.asarray(covariance, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 6:
        return f"covariance has shape {c.shape}, expected (6+k, 6+k)"
    if not np.all(np.isfinite(c)):
        return "covariance has non-finite entries"
    if not np.allclose(c, c.T, rtol=1e-8, atol=0.0):
        return "covariance is not symmetric"
    d = np.diag(c)
    if np.any(d <= 0.0):
        return "covariance has a non-positive variance"
    s = 1.0 / np.sqrt(d)
    eig = np.linalg.eigvalsh(c * s[:, None] * s[None, :])
    if eig[0] < _MIN_CORRELATION_EIGENVALUE:
        return (f"covariance is not positive definite (smallest correlation eigenvalue "
                f"{eig[0]:.2e})")
    return ""


def _correlation_eigen(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(σ, eigenvalues, eigenvectors) of the covariance in correlation form, C = σ R σ."""
    c = np.asarray(covariance, dtype=float)
    s = np.sqrt(np.diag(c))
    eig, vec = np.linalg.eigh(c / s[:, None] / s[None, :])
    return s, eig, vec


def _sqrt_covariance(covariance: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = C from the eigen-decomposition in correlation form (tiny negatives clipped)."""
    s, eig, vec = _correlation_eigen(covariance)
    return s[:, None] * (vec * np.sqrt(np.clip(eig, 0.0, None)))


def log_gaussian_density(x: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """log N(x; mean, covariance) for the rows of ``x`` (positive-definite covariance)."""
    s, eig, vec = _correlation_eigen(covariance)
    z = ((np.atleast_2d(x) - mean) / s) @ vec / np.sqrt(eig)
    return (-0.5 * np.sum(z**2, axis=1) - np.sum(np.log(s)) - 0.5 * np.sum(np.log(eig))
            - 0.5 * z.shape[1] * np.log(2 * np.pi))


def monte_carlo(epoch_tdb_jd: float, nominal: np.ndarray, covariance: np.ndarray, n: int,
                seed: int, nongrav_names: tuple[str, ...] = (),
                include_nominal: bool = False) -> VirtualAsteroids:
    """``n`` samples of N(nominal, covariance) from ``numpy.random.default_rng(seed)``."""
    x0 = np.asarray(nominal, dtype=float)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, x0.size))
    params = x0 + z @ _sqrt_covariance(covariance).T
    if include_nominal and n:
        params[0] = x0
    return VirtualAsteroids(float(epoch_tdb_jd), params, np.full(n, 1.0 / max(n, 1)),
                            np.full(n, np.nan), tuple(nongrav_names))


def lov_direction(covariance: np.ndarray, stm_position: np.ndarray | None = None) -> np.ndarray:
    """The LOV direction ``d`` (6 + k,): a step of σ = 1 is a 1σ displacement (module docstring).

    ``stm_position``: (3, 6 + k) position rows of the state-transition matrix (and non-grav
    partials) from the epoch to the time ``T`` the LOV is defined at; None: ``T`` = the epoch
    (the weak direction of the position covariance there).
    """
    c = np.asarray(covariance, dtype=float)
    phi = np.eye(3, c.shape[0]) if stm_position is None else np.asarray(stm_position, dtype=float)
    p_r = phi @ c @ phi.T
    eig, vec = np.linalg.eigh(0.5 * (p_r + p_r.T))
    u = vec[:, -1]
    d = c @ phi.T @ u / np.sqrt(max(float(eig[-1]), 1e-300))
    # orientation: +σ moves the position at T along +u; fix u's sign for reproducibility
    if u[np.argmax(np.abs(u))] < 0:
        d = -d
    return d


def line_of_variations(epoch_tdb_jd: float, nominal: np.ndarray, direction: np.ndarray,
                       sigmas: np.ndarray, nongrav_names: tuple[str, ...] = ()
                       ) -> VirtualAsteroids:
    """Points ``nominal + σ direction`` for the given ``sigmas`` (equal weights)."""
    s = np.asarray(sigmas, dtype=float)
    params = np.asarray(nominal, dtype=float)[None, :] + s[:, None] * np.asarray(direction)[None, :]
    return VirtualAsteroids(float(epoch_tdb_jd), params, np.full(s.size, 1.0 / max(s.size, 1)),
                            s.copy(), tuple(nongrav_names))


def ranging_samples(ranging, max_samples: int | None = None, seed: int = 0) -> VirtualAsteroids:
    """Virtual asteroids from a :class:`neodefense.orbits.ranging.RangingResult`.

    Its states are heliocentric ICRF at its epoch: the Sun's DE440 state is added. With
    ``max_samples`` below the number of samples with weight, ``max_samples`` draws are made
    with replacement with probability ∝ weight; each distinct sample keeps its draw count as
    weight (an unbiased Monte Carlo estimator). Otherwise the whole weighted grid is used.
    """
    sun_pos, sun_vel = ephemeris.body_barycentric_state("sun", ranging.epoch_tdb_jd)
    states = np.asarray(ranging.states_au, dtype=float) + np.concatenate([sun_pos, sun_vel], axis=1)
    w = np.asarray(ranging.weights, dtype=float)
    p = w / w.sum()
    keep = p > 0.0
    if max_samples is not None and 0 < max_samples < int(keep.sum()):
        # draw with replacement ∝ weight; the draw counts are the new weights (unbiased)
        rng = np.random.default_rng(seed)
        idx, counts = np.unique(rng.choice(p.size, size=max_samples, replace=True, p=p),
                                return_counts=True)
        states, w = states[idx], counts.astype(float)
    else:
        states, w = states[keep], w[keep]
    return VirtualAsteroids(float(ranging.epoch_tdb_jd), states, w / w.sum(),
                            np.full(states.shape[0], np.nan), ())


def unbound_mask(epoch_tdb_jd: float, states_au: np.ndarray) -> np.ndarray:
    """True where a sample is hyperbolic w.r.t. the Sun or has its perihelion inside the Sun."""
    sun_pos, sun_vel = ephemeris.body_barycentric_state("sun", epoch_tdb_jd)
    r = np.asarray(states_au)[:, :3] - sun_pos
    v = np.asarray(states_au)[:, 3:6] - sun_vel
    rn = np.linalg.norm(r, axis=1)
    energy = 0.5 * np.einsum("ij,ij->i", v, v) - GM_SUN_AU3_PER_DAY2 / rn
    h = np.linalg.norm(np.cross(r, v), axis=1)
    e_vec = np.cross(v, np.cross(r, v)) / GM_SUN_AU3_PER_DAY2 - r / rn[:, None]
    e = np.linalg.norm(e_vec, axis=1)
    q = h**2 / GM_SUN_AU3_PER_DAY2 / (1.0 + e)
    return (energy >= 0.0) | (q < SUN_RADIUS_AU) | ~np.isfinite(energy)
