"""Vereš et al. (2017) weights and the same-night de-weighting."""

from __future__ import annotations

import numpy as np

from neodefense.observations.batch import ObservationBatch
from neodefense.orbits import weights

MJD_2010 = 55197.0
MJD_2000 = 51544.0


def test_station_table_and_epochs():
    stn = np.array(["F51", "G96", "703", "703", "691", "XYZ", "XYZ"], dtype=object)
    mode = np.array(["CCD"] * 7, dtype=object)
    cat = np.array(["Gaia2"] * 6 + [""], dtype=object)
    t = np.array([MJD_2010, MJD_2010, MJD_2010, MJD_2010 + 2000, MJD_2000, MJD_2010, MJD_2010])
    sigma = weights.station_sigma_arcsec(stn, mode, cat, t)
    np.testing.assert_allclose(sigma, [0.2, 0.5, 1.0, 0.8, 0.6, 1.0, 1.5])


def test_techniques_and_old_plates():
    mode = np.array(["OCC", "PHO", "PHO", "PHO", "MIC"], dtype=object)
    t = np.array([MJD_2010, -5000.0, 20000.0, 45000.0, 30000.0])  # 1845, 1913, 1982
    sigma = weights.station_sigma_arcsec(np.array(["500"] * 5, dtype=object), mode,
                                         np.array([""] * 5, dtype=object), t)
    np.testing.assert_allclose(sigma, [0.2, 10.0, 3.0, 1.5, 3.0])


def test_same_night_factor_counts_per_station_night_and_object():
    # 9 positions from G96 in one night, 2 from 568 the same night, 9 from G96 the next night
    stn = np.array(["G96"] * 9 + ["568"] * 2 + ["G96"] * 9, dtype=object)
    t = np.concatenate([MJD_2010 + 0.30 + 0.01 * np.arange(9), [MJD_2010 + 0.5] * 2,
                        MJD_2010 + 1.30 + 0.01 * np.arange(9)])
    factor = weights.same_night_factor(stn, t)
    np.testing.assert_allclose(factor, [1.5] * 9 + [1.0] * 2 + [1.5] * 9)


def test_ades_rms_wins_over_the_table():
    batch = ObservationBatch.from_records([
        {"stn": "G96", "mode": "CCD", "astCat": "Gaia2", "obsTime_mjd": MJD_2010, "rmsRA": 0.11,
         "rmsDec": 0.12, "rmsCorr": -0.2, "provID": "2023 MQ5", "kind": "optical"},
        {"stn": "G96", "mode": "CCD", "astCat": "Gaia2", "obsTime_mjd": MJD_2010 + 0.01,
         "provID": "2023 MQ5", "kind": "optical"},
    ])
    s_ra, s_dec, corr = weights.optical_sigmas_arcsec(batch)
    np.testing.assert_allclose(s_ra, [0.11, 0.5])
    np.testing.assert_allclose(s_dec, [0.12, 0.5])
    np.testing.assert_allclose(corr, [-0.2, 0.0])
