"""The Dask client: a LocalCluster by default, an existing cluster by scheduler address.

Every worker is set up once by :class:`WorkerSetup`: astropy offline (IERS tables from
astropy-iers-data, nothing downloaded) and the ASSIST ephemeris opened in that process. Tasks
receive and return numpy arrays; the ephemeris itself never travels (it cannot be pickled).

:func:`shared_cluster` makes one cluster serve every :func:`client` opened inside it (the
pipeline's subflows and its task runner): the configured address, or one LocalCluster started
when the first client asks for it and stopped when the block ends. A run with nothing to compute
starts no cluster.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator

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


class SharedCluster:
    """The Dask cluster of one :func:`shared_cluster` block: the configured scheduler address,
    or a LocalCluster (processes, sized by ``[dask] n_workers`` / ``threads_per_worker``) started
    on the first :attr:`address` request. Thread-safe."""

    def __init__(self, settings: config_mod.Settings) -> None:
        self._configured = settings.dask_address
        dask = settings.raw.get("dask", {})
        self._n_workers = int(dask.get("n_workers", 2))
        self._threads_per_worker = int(dask.get("threads_per_worker", 1))
        self._local: LocalCluster | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._on_close: list[Callable[[], None]] = []

    @property
    def started(self) -> bool:
        """Whether the cluster is in use: a configured address, or a LocalCluster started."""
        return bool(self._configured) or self._local is not None

    @property
    def address(self) -> str:
        """The scheduler address (starts the LocalCluster on first use when none is configured)."""
        if self._configured:
            return self._configured
        with self._lock:
            if self._closed:
                raise RuntimeError("the shared Dask cluster is closed")
            if self._local is None:
                cluster = LocalCluster(n_workers=self._n_workers,
                                       threads_per_worker=self._threads_per_worker,
                                       processes=True, dashboard_address=":0")
                try:
                    with Client(cluster, set_as_default=False) as setup:
                        setup.register_plugin(WorkerSetup())  # ASSIST opened once per worker
                except BaseException:
                    cluster.close()
                    raise
                self._local = cluster
            return self._local.scheduler_address

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (newest first) when the block ends, before a LocalCluster stops: a
        client that outlived its scheduler would log reconnection errors."""
        with self._lock:
            self._on_close.append(callback)

    def close(self) -> None:
        """Run the :meth:`on_close` callbacks, then stop the LocalCluster if one was started (a
        configured cluster is left running)."""
        with self._lock:
            self._closed = True
            callbacks, self._on_close = self._on_close[::-1], []
            cluster, self._local = self._local, None
        try:
            for callback in callbacks:
                callback()
        finally:
            if cluster is not None:
                cluster.close()


_SHARED: contextvars.ContextVar[SharedCluster | None] = contextvars.ContextVar(
    "neodefense_shared_cluster", default=None)


@contextlib.contextmanager
def shared_cluster(settings: config_mod.Settings | None = None) -> Iterator[SharedCluster]:
    """One Dask cluster for everything computed inside the block (in this context: the thread,
    and the Prefect subflows and tasks it calls): every :func:`client` opened without an explicit
    address connects to it. A LocalCluster it started is stopped at the end."""
    cluster = SharedCluster(settings or config_mod.load())
    token = _SHARED.set(cluster)
    try:
        yield cluster
    finally:
        _SHARED.reset(token)
        cluster.close()


def current_shared_cluster() -> SharedCluster | None:
    """The cluster of the enclosing :func:`shared_cluster`; None outside one."""
    return _SHARED.get()


def shared_address() -> str | None:
    """The scheduler address of the enclosing :func:`shared_cluster` (starting its LocalCluster
    if needed); None outside one."""
    cluster = _SHARED.get()
    return None if cluster is None else cluster.address


@contextlib.contextmanager
def client(settings: config_mod.Settings | None = None, address: str | None = None,
           n_workers: int | None = None) -> Iterator[Client]:
    """A Dask client for the configured cluster; inside :func:`shared_cluster`, its cluster;
    else a LocalCluster (processes) of its own. An explicit ``address`` ("" for a LocalCluster)
    wins over both."""
    settings = settings or config_mod.load()
    if address is None:
        address = settings.dask_address or shared_address() or ""
    if address:
        with Client(address) as dask_client:
            dask_client.register_plugin(WorkerSetup())
            yield dask_client
        return
    dask = settings.raw.get("dask", {})
    with LocalCluster(n_workers=n_workers or int(dask.get("n_workers", 2)),
                      threads_per_worker=int(dask.get("threads_per_worker", 1)),
                      processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as dask_client:
        dask_client.register_plugin(WorkerSetup())
        yield dask_client
