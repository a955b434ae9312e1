"""The terminal-facing TMS API (FastAPI): ``create_tms_app(store, home, clock=...)``.

Every route needs ``Authorization: Bearer <credential>``; ``X-Device-Serial``, when
sent, must be the device the credential is bound to. Errors are JSON
``{"error": code, "zh": ..., "en": ...}``: 401 unknown/revoked credential, 403 serial or
terminal mismatch, 404 unknown package, 416 unsatisfiable range, 422 invalid body.
Handlers are plain ``def`` (FastAPI runs them in its thread pool) over ``TmsService``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from posdoctor.store import NotFound, Store
from posdoctor.store.models import utcnow
from posdoctor.tms.credentials import CredentialError, unknown_credential
from posdoctor.tms.reports import ReportError
from posdoctor.tms.service import Clock, TmsService

API = "/api/v1"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
JsonBody = Annotated[dict[str, Any], Body()]


def _error(status: int, code: str, zh: str, en: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "zh": zh, "en": en, **extra}, status_code=status,
                        headers=headers)


class RangeError(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def parse_range(header: str, size: int) -> tuple[int, int]:
    """``(start, end)`` inclusive for one ``bytes=`` range; :class:`RangeError` if it is
    malformed, names several ranges, or lies outside the file."""
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise RangeError(size)
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeError(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or (last and int(last) < start):
        raise RangeError(size)
    return start, end


def authenticated_device(request: Request,
                         authorization: Annotated[str | None, Header()] = None,
                         x_device_serial: Annotated[str | None, Header()] = None) -> str:
    """The TID of the bearer credential (dependency of every route)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unknown_credential()
    service: TmsService = request.app.state.service
    return service.authenticate(token.strip(), x_device_serial)


Tid = Annotated[str, Depends(authenticated_device)]


def create_tms_app(store: Store, home: str | Path, clock: Clock = utcnow) -> FastAPI:
    """The TMS API over ``store`` (packages under ``home/packages``)."""
    service = TmsService(store, home, clock)
    app = FastAPI(title="posdoctor TMS API", version="1", docs_url=None, redoc_url=None)
    app.state.service = service
    _install_error_handlers(app)

    @app.post(f"{API}/heartbeat")
    def heartbeat(tid: Tid, payload: JsonBody) -> dict[str, Any]:
        return service.heartbeat(tid, payload)

    @app.post(f"{API}/status")
    def status(tid: Tid, payload: JsonBody) -> dict[str, int]:
        return service.status(tid, payload)

    @app.post(f"{API}/logs")
    def logs(tid: Tid, payload: JsonBody) -> dict[str, int]:
        return service.logs(tid, payload)

    @app.get(f"{API}/upgrade", response_model=None)
    def upgrade(tid: Tid, version: Annotated[str | None, Query()] = None,
                model: Annotated[str | None, Query()] = None) -> dict[str, Any] | Response:
        offer = service.upgrade_check(tid, version, model)
        return Response(status_code=204) if offer is None else offer

    @app.post(f"{API}/upgrade/report")
    def upgrade_report(tid: Tid, payload: JsonBody) -> dict[str, int]:
        return service.upgrade_report(tid, payload)

    @app.get(f"{API}/packages/{{version}}")
    def package(tid: Tid, version: str, range: Annotated[str | None, Header()] = None) -> Response:
        row = service.package(version)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{row.sha256}"',
                   "X-Package-Sha256": row.sha256, "X-Package-Signature": row.signature}
        if range is None:
            return Response(service.read_package(version), media_type="application/zip",
                            headers=headers)
        start, end = parse_range(range, row.size)
        headers["Content-Range"] = f"bytes {start}-{end}/{row.size}"
        return Response(service.read_package(version, start, end), status_code=206,
                        media_type="application/zip", headers=headers)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CredentialError)
    async def refused(_request: Request, exc: CredentialError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.zh, exc.en)

    @app.exception_handler(ReportError)
    async def invalid_report(_request: Request, exc: ReportError) -> JSONResponse:
        return _error(422, "invalid_report", exc.zh, exc.en, detail=exc.errors)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        return _error(422, "invalid_request", f"请求字段 {where} 无效: {first.get('msg')}",
                      f"invalid request field {where}: {first.get('msg')}")

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        zh = f"固件包 {exc.key} 不存在" if exc.entity == "package" else exc.zh
        return _error(404, "not_found", zh, exc.en)

    @app.exception_handler(RangeError)
    async def bad_range(_request: Request, exc: RangeError) -> JSONResponse:
        return JSONResponse(
            {"error": "bad_range", "zh": "请求的字节范围无效或超出文件大小",
             "en": "requested range is malformed or outside the file"},
            status_code=416, headers={"Content-Range": f"bytes */{exc.size}"})
