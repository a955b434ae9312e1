"""How a terminal talks to its TMS: the `TmsClient` protocol and its two implementations.

- `HttpTmsClient(base_url, credential, serial)`: the terminal-facing TMS API over HTTP
  (httpx), bearer credential, chunked downloads with ``Range`` requests;
- `LocalTmsClient(service, tid, serial)`: calls the same `posdoctor.tms.service.TmsService`
  methods the API handlers call, in-process (fleet-sized simulations).

Failures are typed `TmsError`s (unreachable, timeout, refused, bad answer) carrying a
zh/en `Message`; callers turn them into terminal events.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from posdoctor.terminal.messages import TMS_MESSAGES, Message

__all__ = ["TmsClient", "TmsError", "TmsUnreachable", "TmsTimeout", "TmsRefused", "TmsBadAnswer",
           "HttpTmsClient", "LocalTmsClient", "ReportBatch", "TMS_MESSAGES"]

API = "/api/v1"


class TmsError(Exception):
    """A TMS call that failed; `message` is what the terminal records, `status` the HTTP status."""

    default = TMS_MESSAGES.BAD_ANSWER

    def __init__(self, reason: str, *, status: int | None = None, message: Message | None = None) -> None:
        self.message = message or self.default
        self.reason = reason
        self.status = status
        super().__init__(f"{self.message.en}: {reason}")

    @property
    def code(self) -> str:
        return self.message.code


class TmsUnreachable(TmsError):
    default = TMS_MESSAGES.UNREACHABLE


class TmsTimeout(TmsError):
    default = TMS_MESSAGES.TIMEOUT


class TmsRefused(TmsError):
    default = TMS_MESSAGES.REFUSED


class TmsBadAnswer(TmsError):
    default = TMS_MESSAGES.BAD_ANSWER


class TmsClient(Protocol):
    """What the upgrade agent and the telemetry need from a TMS."""

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        """The upgrade offer (or ``{"action": "rollback", ...}``), None when there is nothing."""
        ...

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of the package described by the offer."""
        ...

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]: ...


class HttpTmsClient:
    """The TMS API over HTTP. One `httpx.AsyncClient` per terminal (call `aclose`)."""

    def __init__(self, base_url: str, credential: str, serial: str, *, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.serial = serial
        headers = {"Authorization": f"Bearer {credential}", "X-Device-Serial": serial}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(timeout_s), transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> HttpTmsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise TmsTimeout(f"{method} {path}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise TmsUnreachable(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise TmsRefused(_error_reason(response), status=response.status_code)
        if response.status_code >= 400:
            raise TmsBadAnswer(_error_reason(response), status=response.status_code)
        return response

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = await self._request(method, path, **kw)
        try:
            data = response.json()
        except ValueError:
            raise TmsBadAnswer(f"{method} {path}: answer is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise TmsBadAnswer(f"{method} {path}: answer is not an object", status=response.status_code)
        return data

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", f"{API}/heartbeat", json=payload)

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", f"{API}/status", json=payload)

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._json("POST", f"{API}/logs", json={"events": events})

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        response = await self._request("GET", f"{API}/upgrade", params={"version": version, "model": model})
        if response.status_code == 204 or not response.content:
            return None
        try:
            data = response.json()
        except ValueError:
            raise TmsBadAnswer("upgrade check: answer is not JSON", status=response.status_code) from None
        return data if isinstance(data, dict) else None

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        url = package.get("url") or f"{API}/packages/{package['version']}"
        response = await self._request("GET", url, headers={"Range": f"bytes={start}-{end}"})
        if response.status_code == 206:
            return response.content
        if response.status_code == 200:  # a server that ignores Range sends everything
            return response.content[start:end + 1]
        raise TmsBadAnswer(f"download answered {response.status_code}", status=response.status_code)

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", f"{API}/upgrade/report", json=report)


def _error_reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for candidate in (body, body.get("detail")):
            if isinstance(candidate, dict) and "error" in candidate:
                return f"HTTP {response.status_code} {candidate['error']}"
    return f"HTTP {response.status_code}"


class ReportBatch:
    """Reports of many in-process terminals written in one TMS transaction per `flush()`.

    For fleet-sized simulations: the TMS's batch functions (`posdoctor.tms.reports.
    record_reports`, `posdoctor.tms.campaign_reports.apply_upgrade_reports`) instead of one
    transaction per report. Queued reports count for the campaign only once flushed.
    """

    def __init__(self, service: Any) -> None:
        self.service = service
        self.upgrade_reports: list[tuple[str, dict[str, Any]]] = []
        self.telemetry: list[tuple[str, str, dict[str, Any]]] = []

    def __len__(self) -> int:
        return len(self.upgrade_reports) + len(self.telemetry)

    def flush(self) -> int:
        from posdoctor.tms.campaign_reports import apply_upgrade_reports
        from posdoctor.tms.reports import Report, record_reports

        now = self.service.clock()
        written = 0
        if self.telemetry:
            batch, self.telemetry = self.telemetry, []
            written += record_reports(self.service.store, [Report(tid, kind, body, now) for tid, kind, body in batch])
        if self.upgrade_reports:
            reports, self.upgrade_reports = self.upgrade_reports, []
            written += apply_upgrade_reports(self.service.store, [(tid, body, now) for tid, body in reports])
        return written


class LocalTmsClient:
    """The TMS in-process: the `TmsService` methods the API handlers call (synchronous,
    one transaction each), with the service's errors mapped to `TmsError`s. With a
    `ReportBatch`, heartbeats, self-checks, logs and upgrade reports are queued on it
    (answered ``{"queued": True}``) and written when the batch is flushed."""

    def __init__(self, service: Any, tid: str, serial: str, batch: ReportBatch | None = None) -> None:
        self.service = service
        self.tid = tid
        self.serial = serial
        self.batch = batch

    async def aclose(self) -> None:
        return None

    def _call(self, what: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except Exception as exc:  # the service's typed errors -> the client's typed errors
            status = getattr(exc, "status", None)
            reason = f"{what}: {getattr(exc, 'code', None) or type(exc).__name__}"
            if status in (401, 403) or type(exc).__name__ == "CredentialError":
                raise TmsRefused(reason, status=status) from None
            if type(exc).__name__ in ("ReportError", "NotFound", "InvalidValue", "StoreError") or status:
                raise TmsBadAnswer(reason, status=status) from None
            raise

    def _queued(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if self.batch is None:
            return None
        self.batch.telemetry.append((self.tid, kind, payload))
        return {"queued": True}

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._queued("heartbeat", payload) or self._call("heartbeat", self.service.heartbeat, self.tid,
                                                                  payload)

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._queued("self_check", payload) or self._call("status", self.service.status, self.tid,
                                                                   payload)

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self._queued("logs", {"events": events}) or self._call("logs", self.service.logs, self.tid,
                                                                        {"events": events})

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        return self._call("upgrade", self.service.upgrade_check, self.tid, version, model)

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        data = self._call("package", self.service.read_package, str(package["version"]), start, end)
        return bytes(data)

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]:
        if self.batch is not None:
            self.batch.upgrade_reports.append((self.tid, report))
            return {"queued": True}
        return self._call("report", self.service.upgrade_report, self.tid, report) or {"accepted": 1}
