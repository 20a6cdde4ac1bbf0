"""Store errors the API maps to 503 without importing pymongo itself."""

import re

from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    OperationFailure,
    ServerSelectionTimeoutError,
)

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    AutoReconnect,
    ConnectionFailure,
    ServerSelectionTimeoutError,
)

StoreFailure = OperationFailure
"""A command the store answered with an error (``store_is_away`` tells an outage)."""

# MongoDB's codes for a server going away, and FerretDB's InternalError (1) when the
# PostgreSQL behind it is down: an admin shutdown (SQLSTATE 57P01..57P03), a connection
# exception (class 08), or a failed dial
_AWAY_CODES = {91, 189, 10107, 11600, 11602, 13435, 13436}
_BACKEND_AWAY = re.compile(
    r"SQLSTATE (57P0[1-3]|08\w{3})|failed to connect|connection refused|"
    r"closed pool|conn closed",
    re.IGNORECASE,
)


def store_is_away(exc: BaseException) -> bool:
    """Whether an error means the store is unavailable (retry), not a bad request: no
    connection, or a command failed for the server (or FerretDB's PostgreSQL) going away."""
    if isinstance(exc, STORE_UNAVAILABLE):
        return True
    if not isinstance(exc, OperationFailure):
        return False
    if exc.code in _AWAY_CODES:
        return True
    return exc.code == 1 and bool(_BACKEND_AWAY.search(str(exc)))
