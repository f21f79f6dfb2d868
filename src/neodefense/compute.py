"""The Dask client: a LocalCluster by default, an existing cluster by scheduler address.

Every worker is set up once by :class:`WorkerSetup`: astropy offline (IERS tables from
astropy-iers-data, nothing downloaded) and the ASSIST ephemeris opened in that process. Tasks
receive and return numpy arrays; the ephemeris itself never travels (it cannot be pickled).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from neodefense import config as config_mod


def prepare_process() -> None:
    """What every process that computes needs before its first task (idempotent, cheap)."""
    from neodefense.dynamics import ephemeris
    from neodefense.timescales import configure_astropy_offline

    configure_astropy_offline()
    ephemeris.assist_ephem()


class WorkerSetup(WorkerPlugin):
    """Runs :func:`prepare_process` once in each Dask worker when it starts or joins."""

    name = "neodefense-setup"

    def setup(self, worker) -> None:  # noqa: ANN001 - Dask's signature
        prepare_process()


@contextlib.contextmanager
def client(settings: config_mod.Settings | None = None, address: str | None = None,
           n_workers: int | None = None) -> Iterator[Client]:
    """A Dask client for the configured cluster; a LocalCluster (processes) when no address."""
    settings = settings or config_mod.load()
    address = address if address is not None else settings.dask_address
    if address:
        with Client(address) as dask_client:
            dask_client.register_plugin(WorkerSetup())
            yield dask_client
        return
    dask = settings.raw.get("dask", {})
    with LocalCluster(n_workers=n_workers or int(dask.get("n_workers", 2)),
                      threads_per_worker=int(dask.get("threads_per_worker", 1)),
                      processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as dask_client:
        dask_client.register_plugin(WorkerSetup())
        yield dask_client
