"""Pydantic models only, no I/O: the API's shapes, the workflows' state and the event catalogue."""
