"""Store errors the API maps to 503 without importing pymongo itself."""

from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    AutoReconnect,
    ConnectionFailure,
    ServerSelectionTimeoutError,
)
