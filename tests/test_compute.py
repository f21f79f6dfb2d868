"""Dask: a LocalCluster of processes, each worker set up once (astropy offline, ASSIST ephemeris)."""

from __future__ import annotations

import os

from neodefense import compute


def _worker_state() -> tuple[int, int, bool]:
    from astropy.utils import iers

    from neodefense.dynamics import ephemeris

    info = ephemeris.assist_ephem.cache_info()
    return os.getpid(), info.currsize, bool(iers.conf.auto_download)


def test_local_cluster_workers_are_prepared_once():
    with compute.client(address="", n_workers=2) as client:
        results = client.run(_worker_state)
        assert len(results) == 2
        pids = {pid for pid, _, _ in results.values()}
        assert len(pids) == 2 and os.getpid() not in pids
        for _, opened, auto_download in results.values():
            assert opened == 1  # the ephemeris is open in every worker ...
            assert auto_download is False  # ... and astropy never downloads
        # a task uses the worker's ephemeris, and only numbers travel back: ASSIST's Earth at
        # J2000 (its jd_ref) agrees with the DE440 kernel read directly, to a metre
        future = client.submit(_assist_earth_x_au, pure=False)
        from neodefense.dynamics import ephemeris

        expected = ephemeris.earth_barycentric_state(2451545.0)[0][0, 0]
        assert abs(future.result() - expected) * ephemeris.AU_KM < 1e-3


def _assist_earth_x_au() -> float:
    from neodefense.dynamics import ephemeris

    return float(ephemeris.assist_ephem().get_particle("earth", 0.0).x)
