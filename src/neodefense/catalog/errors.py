"""Which database errors are worth retrying."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


def is_transient(error: BaseException | None) -> bool:
    """True for errors that may pass on retry: a lost connection, a locked SQLite file, a server
    restarting. Integrity and programming errors are not transient."""
    if error is None:
        return False
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    if isinstance(error, sa_exc.TimeoutError):  # connection-pool timeout
        return True
    return isinstance(error, ConnectionError)
