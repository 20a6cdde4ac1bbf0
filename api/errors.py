"""Temporal and store errors mapped to HTTP once, for every route."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.logging import correlation_id
from core.temporal import starved
from persistence import STORE_UNAVAILABLE, StoreFailure, store_is_away

log = logging.getLogger("agora.api")

APPLICATION_ERROR_STATUS = {
    "NotFound": 404,
    "Forbidden": 403,
    "Conflict": 409,
    "Invalid": 422,
    "Busy": 503,
    "Internal": 500,
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
    if field == "Idempotency-Key" and sep:
        return [{"loc": ["header", field], "msg": reason, "type": "value_error"}]
    simple = sep and field.replace("_", "").replace(".", "").isalnum()
    loc = [where, *field.split(".")] if simple else [where]
    return [{"loc": loc, "msg": reason if simple else message, "type": "value_error"}]


def unprocessable(message: str, where: str = "body") -> HTTPException:
    """422 for input that passed the schema but not the rules (``field: reason``)."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, validation_detail(message, where))


_SURROGATES = re.compile(r"[\ud800-\udfff]")
_FIELD_FIRST = re.compile(r"^(?:Value error, )?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.+)$")


def _printable(value: Any) -> Any:
    """A location part or message that encodes as UTF-8 JSON (a lone surrogate does not)."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    return value if isinstance(value, int) else _printable(str(value))


def public_validation_errors(errors: list[dict]) -> list[dict]:
    """FastAPI's validation errors without the input they echo (NaN, a lone surrogate or a
    secret would not belong in an answer) and without ``ctx``: ``loc``, ``msg``, ``type``.
    A model-level error that names its field (``field: reason``) gets that field's ``loc``."""
    public = []
    for error in errors:
        loc = [_printable(part) for part in error.get("loc", ())]
        msg = _printable(str(error.get("msg", "")))
        found = _FIELD_FIRST.match(msg)
        if found and error.get("type") == "value_error":
            loc += found.group(1).split(".")
            msg = found.group(2)
        public.append({"loc": loc, "msg": msg, "type": _printable(str(error.get("type", "")))})
    return public


class ServerErrors:
    """ASGI middleware, innermost: an exception no handler took becomes a JSON 500 (which
    the audit records), with ``Connection: close``; one raised after the answer began is
    left to the server, which drops the connection rather than send half an answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error: %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = json.dumps(
                {
                    "detail": "internal error: the request may not have taken effect",
                    "correlation_id": correlation_id.get(),
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = public_validation_errors(list(exc.errors()))
        request.state.refusal = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail
        )[:500]
        return JSONResponse({"detail": detail}, status_code=422)

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

    @app.exception_handler(WorkflowQueryFailedError)
    async def query_failed(_: Request, exc: WorkflowQueryFailedError) -> JSONResponse:
        if starved(exc):  # asked three times (core.temporal): the worker is overloaded
            return _problem(
                503, "the workflow's worker is too busy to answer; retry", {"Retry-After": "1"}
            )
        raise exc  # a query handler's bug: the JSON 500 (ServerErrors)

    @app.exception_handler(WorkflowAlreadyStartedError)
    async def already_started(_: Request, exc: WorkflowAlreadyStartedError) -> JSONResponse:
        return _problem(409, f"{exc.workflow_id} already exists")

    @app.exception_handler(RPCError)
    async def rpc_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if "completed" in exc.message:  # its workflow has ended: closed, retired, settled
                return _problem(409, "it has ended (closed, retired or settled): nothing to change")
            return _problem(404, "not found")
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return _problem(409, "already exists")
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            return _problem(429, "too many requests in flight; retry", {"Retry-After": "1"})
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return _problem(503, "temporal is unavailable", {"Retry-After": "2"})
        if (
            exc.status == RPCStatusCode.FAILED_PRECONDITION
            and "workflow task" in exc.message.lower()
        ):
            # a worker died holding the workflow's task, or the task it would have joined
            # failed (a continue-as-new that met new work): the next task takes it
            return _problem(
                503, "the workflow is recovering from a worker restart; retry", {"Retry-After": "2"}
            )
        log.error("temporal rpc error", exc_info=exc)
        return _problem(502, "temporal rejected the request")

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _problem(503, f"{exc.dependency} is unavailable", {"Retry-After": "2"})

    @app.exception_handler(StoreFailure)
    async def store_failed(_: Request, exc: StoreFailure) -> JSONResponse:
        if store_is_away(exc):  # FerretDB answering while its PostgreSQL is down
            return _problem(503, "mongodb is unavailable", {"Retry-After": "2"})
        raise exc  # a bug: the JSON 500 (ServerErrors)

    for error in STORE_UNAVAILABLE:
        app.add_exception_handler(
            error,
            lambda _r, _e: _problem(503, "mongodb is unavailable", {"Retry-After": "2"}),
        )


PROBLEM_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "Why, in a sentence (never a secret)."},
        "correlation_id": {"type": ["string", "null"]},
    },
    "required": ["detail"],
}
VALIDATION_SCHEMA = {
    "title": "ValidationProblem",
    "type": "object",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        }
    },
    "required": ["detail"],
}
STATUS_TEXT = {
    400: "Malformed request (a body that is not JSON, say)",
    401: "No token, or one that is invalid, expired or revoked (the reason is in detail)",
    403: "The caller may not do this (the reason is in detail)",
    404: "No such object, or one the caller may not see",
    409: "The object's state refuses this (closed, retired, taken, not your turn...)",
    413: "The body or the message content is over its size limit",
    422: "A field is invalid (loc names it)",
    429: "Too many requests or messages: wait Retry-After seconds",
    500: "An internal error (audited; the correlation id finds it in the logs)",
    503: "A service Agora needs is unavailable, or the object is busy: retry after Retry-After",
    504: "No answer in time (detail says whether a retry is safe)",
}


def statuses_of(operation: dict, method: str, path: str) -> list[int]:
    """Every status an operation can answer besides its own success: the limits and the
    dependencies for all; authentication where it is required; 404 and 409 where the path
    or the body names an object; 400/413/422 where there is input."""
    public = operation.get("x-agora-access") == ["public"]
    params = operation.get("parameters", [])
    codes = {429, 500, 503, 504}
    if not public:
        codes |= {401, 403}
    if "{" in path or method != "get":  # the path or the body names an object
        codes |= {404, 409}
    if any(p.get("in") in ("query", "path", "header") for p in params):
        codes.add(422)
    if "requestBody" in operation:
        codes |= {400, 413, 422}
    return sorted(codes)


def document_errors(schema: dict) -> dict:
    """Write every error an operation can answer into the OpenAPI, each with its schema
    (``Problem`` or ``ValidationProblem``), so a client (and schemathesis) knows them."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ValidationProblem"] = VALIDATION_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for code in statuses_of(operation, method, path):
                name = "ValidationProblem" if code == 422 else "Problem"
                content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
                entry = {"description": STATUS_TEXT[code], "content": content}
                if code == 422 or str(code) not in responses:
                    responses[str(code)] = entry
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return schema
