"""Impactor size, energy and the risk scales (neodefense.impacts.scales) against hand-computed
numbers and published ratings.

Published Torino ratings (CNEOS / NASA press releases): 2024 YR4 (E ≈ 8 Mt): 1.3 % and 3.1 %
→ 3, 0.28 % → 1, 0.004 % → 0; Apophis, Dec 2004 (E ≈ 880-1,500 Mt): 2.7 % → 4, ≈ 1/300 → 2;
2011 AG5 (≈ 100 Mt, ≈ 1/500) → 1; 2007 VK184 (≈ 150 Mt, 3.4e-4) → 1; 2013 TV135 (≈ 2,500 Mt,
1.6e-5) → 1; 2008 TC3 (≈ 0.001 Mt, certain) → 0. Palermo: Apophis reached +1.10 in Dec 2004.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from neodefense.impacts.bplane import GM_KM3_S2, RADIUS_KM
from neodefense.impacts.scales import (
    ALBEDO_DEFAULT,
    DENSITY_DEFAULT_KG_M3,
    MT_TNT_J,
    PALERMO_MIN_YEARS,
    background_frequency_per_year,
    diameter_m_from_H,
    escape_speed_km_s,
    iawn_notify,
    impact_energy_mt,
    impact_speed_km_s,
    mass_kg,
    palermo,
    palermo_cumulative,
    smpag_criterion,
    torino,
)


def test_constants():
    assert ALBEDO_DEFAULT == 0.154
    assert DENSITY_DEFAULT_KG_M3 == 2600.0
    assert MT_TNT_J == 4.184e15


def test_diameter_from_H():
    # 1329 km / sqrt(0.154) * 10^-4.4 = 3386.64 km * 3.98107e-5 = 0.134823 km
    assert diameter_m_from_H(22.0) == pytest.approx(134.823, abs=1e-3)
    assert diameter_m_from_H(22.0, 0.25) == pytest.approx(1329e3 / 0.5 * 10**-4.4, rel=1e-14)
    assert diameter_m_from_H(17.0) == pytest.approx(10 * diameter_m_from_H(22.0), rel=1e-14)
    np.testing.assert_allclose(diameter_m_from_H(np.array([17.0, 22.0])),
                               [1348.23, 134.823], rtol=1e-5)


def test_mass_and_energy_by_hand():
    # D = 100 m, rho = 2600: m = 2600 * pi * 1e6 / 6 = 1.36136e9 kg
    assert mass_kg(100.0) == pytest.approx(1.361357e9, rel=1e-6)
    # at 20 km/s: 0.5 * 1.361357e9 * 4e8 J = 2.722714e17 J = 65.07 Mt
    assert impact_energy_mt(20.0, diameter_m=100.0) == pytest.approx(65.074, rel=1e-4)
    # the diameter overrides H; H alone uses the default albedo; neither: NaN
    assert impact_energy_mt(20.0, H=30.0, diameter_m=100.0) == impact_energy_mt(20.0, diameter_m=100.0)
    by_h = impact_energy_mt(20.0, H=22.0)
    assert by_h == pytest.approx(65.074 * (134.823 / 100.0) ** 3, rel=1e-4)
    assert math.isnan(impact_energy_mt(20.0))
    assert impact_energy_mt(20.0, H=22.0, density_kg_m3=1300.0) == pytest.approx(by_h / 2, rel=1e-14)
    # known diameter where finite, H elsewhere (vectorized)
    out = impact_energy_mt(np.array([20.0, 20.0]), H=22.0, diameter_m=np.array([100.0, np.nan]))
    np.testing.assert_allclose(out, [65.074, by_h], rtol=1e-4)


def test_escape_and_impact_speed():
    # sqrt(2 * 398600.435507 / 6378.137) (11.186 km/s is the mean-radius value)
    assert escape_speed_km_s() == pytest.approx(11.1799, abs=1e-4)
    assert escape_speed_km_s("moon") == pytest.approx(
        math.sqrt(2 * GM_KM3_S2["moon"] / RADIUS_KM["moon"]), rel=1e-15)
    assert escape_speed_km_s("moon") == pytest.approx(2.376, abs=1e-3)
    assert impact_speed_km_s(0.0) == pytest.approx(11.1799, abs=1e-4)
    assert impact_speed_km_s(5.84) == pytest.approx(math.hypot(5.84, 11.179875), rel=1e-7)
    np.testing.assert_allclose(impact_speed_km_s(np.array([0.0, 20.0]), "moon"),
                               [2.375676, math.hypot(20.0, 2.375676)], rtol=1e-6)


def test_background_frequency_and_palermo_by_hand():
    assert background_frequency_per_year(1.0) == 0.03
    # 0.03 * 1200^-0.8 = 0.03 * exp(-0.8 * 7.09008) = 1.03223e-4 per year
    assert background_frequency_per_year(1200.0) == pytest.approx(1.03223e-4, rel=1e-5)
    # IP = 1/2700, E = 1,200 Mt, 156 years: log10(3.7037e-4 / 1.61028e-2) = -1.6383
    assert palermo(1 / 2700, 1200.0, 156.0) == pytest.approx(-1.6383, abs=1e-4)
    # Apophis, Dec 2004: 2.7 %, ~1,500 Mt, 24.3 years ahead -> +1.1 (published +1.10)
    assert palermo(0.027, 1500.0, 24.3) == pytest.approx(1.10, abs=0.03)
    ps = palermo(np.array([1e-3, 1e-4, 0.0]), np.array([10.0, 10.0, 10.0]), np.array([10.0, 10.0, 10.0]))
    assert ps[0] - ps[1] == pytest.approx(1.0, rel=1e-12) and ps[2] == -np.inf
    assert math.isnan(palermo(1e-3, np.nan, 10.0))


def test_palermo_floors_delta_t_at_one_day():
    at_floor = palermo(0.5, 1.0, PALERMO_MIN_YEARS)
    for dt in (0.0, -3.0, 1e-9):
        assert palermo(0.5, 1.0, dt) == at_floor
    assert math.isfinite(at_floor)
    assert PALERMO_MIN_YEARS == pytest.approx(1 / 365.25)


def test_palermo_cumulative():
    assert palermo_cumulative([]) is None
    assert palermo_cumulative([None]) is None
    assert palermo_cumulative([-2.0]) == pytest.approx(-2.0)
    # 10^-2 + 10^-2 = 2e-2 -> -1.69897
    assert palermo_cumulative([-2.0, -2.0]) == pytest.approx(math.log10(2e-2), rel=1e-14)
    assert palermo_cumulative(np.array([-1.0, -2.0, -3.0])) == pytest.approx(math.log10(0.111), rel=1e-14)
    # no overflow or underflow for extreme values
    assert palermo_cumulative([-400.0, -400.0]) == pytest.approx(-400.0 + math.log10(2.0), rel=1e-14)
    assert palermo_cumulative([-np.inf, -5.0]) == pytest.approx(-5.0)
    assert palermo_cumulative([-np.inf]) == -np.inf
    assert math.isnan(palermo_cumulative([-1.0, np.nan]))


@pytest.mark.parametrize(("name", "ip", "energy_mt", "rating"), [
    ("2024 YR4, 1.3 %", 0.013, 8.0, 3),
    ("2024 YR4, 3.1 %", 0.031, 8.0, 3),
    ("2024 YR4, 0.28 %", 0.0028, 8.0, 1),
    ("2024 YR4, 0.004 %", 4e-5, 8.0, 0),
    ("Apophis 2004, 2.7 %, 880 Mt", 0.027, 880.0, 4),
    ("Apophis 2004, 2.7 %, 1,500 Mt", 0.027, 1500.0, 4),
    ("Apophis 2004, 1/300, 880 Mt", 1 / 300, 880.0, 2),
    ("Apophis 2004, 1/300, 1,500 Mt", 1 / 300, 1500.0, 2),
    ("2011 AG5", 1 / 500, 100.0, 1),
    ("2007 VK184", 3.4e-4, 150.0, 1),
    ("2013 TV135", 1.6e-5, 2500.0, 1),
    ("2008 TC3", 1.0, 0.001, 0),
])
def test_torino_published_ratings(name, ip, energy_mt, rating):
    assert torino(ip, energy_mt) == rating, name
    assert isinstance(torino(ip, energy_mt), int)


def test_torino_chart_regions():
    # below 1 Mt: 0 whatever the probability
    assert [torino(p, 0.9) for p in (1e-6, 0.05, 0.5, 1.0)] == [0, 0, 0, 0]
    assert torino(0.0, 1e6) == 0 and torino(np.nan, 10.0) == 0 and torino(0.5, np.nan) == 0
    # certain collisions: local, regional, global
    assert [torino(0.995, e) for e in (1.0, 99.0, 100.0, 9.9e4, 1e5, 1e8)] == [8, 8, 9, 9, 10, 10]
    # 1 % .. 99 %: the g_c lines (y + c)/3 + (x + 2)/2 = 0 through (P = 1 %, E = 1e2 / 1e5 / 1e8)
    assert torino(0.02, 10.0) == 3 and torino(0.02, 1e3) == 4 and torino(0.02, 1e5) == 6
    assert torino(0.5, 1e3) == 5 and torino(0.5, 9e4) == 5
    # g_-8 at P = 0.5: log10 E = 8 - 1.5 (log10 0.5 + 2) = 5.45
    assert torino(0.5, 2e5) == 6 and torino(0.5, 4e5) == 7
    assert torino(0.011, 5e7) == 6 and torino(0.05, 5e7) == 7  # g_-8 at 5e7 Mt: P = 1.6 %
    # below 1 %: 0 / 1 / 2 / 6 bands, each two decades of P wide at fixed E, P ∝ E^(-2/3)
    e = 1e6
    p01 = 10 ** (-2 - 2 * (6 + 1) / 3)
    p12 = 10 ** (-2 - 2 * (6 - 2) / 3)
    p26 = 10 ** (-2 - 2 * (6 - 5) / 3)
    assert [torino(f * p, e) for p in (p01, p12, p26) for f in (0.99, 1.01)] == [0, 1, 1, 2, 2, 6]
    # the boundaries move with E^(-2/3)
    assert torino(1.01 * p01 * 1e-2, e * 1e3) == 1 and torino(0.99 * p01 * 1e-2, e * 1e3) == 0
    # defined within 100 years only
    assert torino(0.5, 1e3, years_to_impact=99.0) == 5
    assert torino(0.5, 1e3, years_to_impact=101.0) == 0


def test_torino_vectorized():
    out = torino(np.array([0.013, 4e-5, 0.027, 1.0]), np.array([8.0, 8.0, 1500.0, 0.001]),
                 years_to_impact=np.array([8.0, 8.0, 24.0, 0.0]))
    assert out.dtype.kind == "i"
    np.testing.assert_array_equal(out, [3, 0, 4, 0])


def test_iawn_and_smpag_edges():
    assert iawn_notify(0.0101, 10.1, 49.0) is True
    assert iawn_notify(0.01, 10.1, 49.0) is False  # IP must exceed 1 %
    assert iawn_notify(0.0101, 10.0, 49.0) is False  # D must exceed 10 m
    assert iawn_notify(0.0101, 10.1, 50.0) is True  # within 50 years, inclusive
    assert iawn_notify(0.0101, 10.1, 50.01) is False
    assert iawn_notify(1.0, 4.0, 0.0) is False  # 2008 TC3 (~4 m): below the size threshold
    assert iawn_notify(0.5, 100.0, np.nan) is False
    assert smpag_criterion(0.0101, 50.1, 49.0) is True
    assert smpag_criterion(0.0101, 50.0, 49.0) is False
    assert smpag_criterion(0.031, 60.0, 7.9) is True  # 2024 YR4 at its peak (D ~ 40-90 m)
    assert smpag_criterion(0.031, 30.0, 7.9) is False and iawn_notify(0.031, 30.0, 7.9) is True
    np.testing.assert_array_equal(iawn_notify(np.array([0.5, 0.005]), 20.0, 1.0), [True, False])
