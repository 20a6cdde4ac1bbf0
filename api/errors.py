"""Temporal and store errors mapped to HTTP once, for every route."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from persistence import STORE_UNAVAILABLE

log = logging.getLogger("agora.api")

APPLICATION_ERROR_STATUS = {
    "NotFound": 404,
    "Forbidden": 403,
    "Conflict": 409,
    "Invalid": 422,
    "Busy": 503,
}


class ServiceUnavailable(Exception):
    """A dependency the request needs is not connected."""

    def __init__(self, dependency: str) -> None:
        super().__init__(dependency)
        self.dependency = dependency


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def validation_detail(message: str, where: str = "body") -> list[dict]:
    """A 422's detail in the shape FastAPI publishes for every route (``HTTPValidationError``):
    ``field: reason`` names the field; anything else is about the request as a whole."""
    field, sep, reason = message.partition(": ")
    simple = sep and field.replace("_", "").replace(".", "").isalnum()
    loc = [where, *field.split(".")] if simple else [where]
    return [{"loc": loc, "msg": reason if simple else message, "type": "value_error"}]


def unprocessable(message: str, where: str = "body") -> HTTPException:
    """422 for input that passed the schema but not the rules (``field: reason``)."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, validation_detail(message, where))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WorkflowUpdateFailedError)
    async def update_failed(_: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            code = APPLICATION_ERROR_STATUS.get(cause.type or "", 409)
            if code == 422:
                return JSONResponse({"detail": validation_detail(cause.message)}, status_code=422)
            if code == 503:
                return _problem(code, cause.message, {"Retry-After": "1"})
            return _problem(code, cause.message)
        return _problem(409, str(cause or exc))

    @app.exception_handler(WorkflowAlreadyStartedError)
    async def already_started(_: Request, exc: WorkflowAlreadyStartedError) -> JSONResponse:
        return _problem(409, f"{exc.workflow_id} already exists")

    @app.exception_handler(RPCError)
    async def rpc_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return _problem(404, "not found")
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return _problem(409, "already exists")
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            return _problem(429, "too many requests in flight; retry", {"Retry-After": "1"})
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return _problem(503, "temporal is unavailable", {"Retry-After": "2"})
        if exc.status == RPCStatusCode.FAILED_PRECONDITION and "Workflow Task" in exc.message:
            # a worker died holding the workflow's task: the next worker picks it up
            return _problem(503, "the workflow is recovering from a worker restart; retry",
                            {"Retry-After": "2"})  # fmt: skip
        log.error("temporal rpc error", exc_info=exc)
        return _problem(502, "temporal rejected the request")

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _problem(503, f"{exc.dependency} is unavailable", {"Retry-After": "2"})

    for error in STORE_UNAVAILABLE:
        app.add_exception_handler(
            error,
            lambda _r, _e: _problem(503, "mongodb is unavailable", {"Retry-After": "2"}),
        )
