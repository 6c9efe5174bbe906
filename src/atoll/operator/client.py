"""The provider's side of a standalone Operator-Service: the registry, over signed HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from atoll.errors import (
    AtollError,
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    RemoteError,
    Unavailable,
)
from atoll.models.job import RESULTS_PAGE, JobInfo, ResultFile, ResultsPage, Workflow
from atoll.operator.http import H_ADDRESS, H_NONCE, H_SIGNATURE, PREFIX, request_message
from atoll.signing import Key, is_stale_nonce

#: the service's clock, as a stale-nonce refusal states it
_SERVICE_NOW = re.compile(r"\((\d{1,20}) µs since the epoch\)")

_ERRORS: dict[int, type[AtollError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    410: Gone,
    503: Unavailable,
}


#: seconds an idle connection to the Operator-Service is kept for the next request: shorter
#: than the server keeps one open (:data:`atoll.server.KEEP_ALIVE_S`, and 5 s for a server's
#: default), so that a request is never sent on a connection being closed at that moment
IDLE_CONNECTION_S = 3.0


class OperatorClient:
    def __init__(self, base_url: str, key: Key, transport: httpx.AsyncBaseTransport | None = None):
        self._key = key
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(90.0),
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=IDLE_CONNECTION_S),
        )

    def _request(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> httpx.Request:
        content = json.dumps(body).encode() if body is not None else b""
        request = self._client.build_request(
            method,
            PREFIX + path,
            params=params,
            content=content,
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        nonce = self._key.next_nonce()
        text = request_message(method, request.url.path, request.url.query.decode(), content, nonce)
        request.headers[H_ADDRESS] = self._key.address
        request.headers[H_NONCE] = str(nonce)
        request.headers[H_SIGNATURE] = self._key.sign(text)
        return request

    @staticmethod
    async def _message(response: httpx.Response) -> str:
        try:
            await response.aread()
        except httpx.HTTPError:
            return "operator error"
        try:
            return str(response.json().get("error", "operator error"))
        except (ValueError, AttributeError):
            return "operator error"

    async def _send(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> httpx.Response:
        """Sign and send (the body streamed); once more after a stale nonce, the provider's
        other clients on this key having used it, or the operator's clock being elsewhere."""
        for attempt in range(2):
            try:
                response = await self._client.send(
                    self._request(method, path, params, body), stream=True
                )
            except httpx.HTTPError as exc:
                raise RemoteError(f"operator service unreachable: {type(exc).__name__}") from None
            if response.status_code != 401 or attempt:
                break
            message = await self._message(response)
            await response.aclose()
            if not is_stale_nonce(message):
                break
            found = _SERVICE_NOW.search(message)
            if found is not None:
                self._key.adopt_clock(int(found.group(1)))
        await self._raise(response)
        return response

    @classmethod
    async def _raise(cls, response: httpx.Response) -> None:
        if response.is_success:
            return
        message = await cls._message(response)
        await response.aclose()
        cls_ = _ERRORS.get(response.status_code)
        if cls_ is not None:
            raise cls_(message)
        raise RemoteError(f"operator service: {message}", status_code=502)

    async def _json(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        response = await self._send(method, path, params, body)
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise RemoteError(f"operator service unreachable: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        return response.json()

    async def register(self, workflow: Workflow) -> JobInfo:
        data = await self._json(
            "POST", "/compute", body={"workflow": workflow.model_dump(mode="json")}
        )
        return JobInfo.model_validate(data)

    async def admit(self, workflow: Workflow) -> None:
        await self._json(
            "POST", "/compute/admit", body={"workflow": workflow.model_dump(mode="json")}
        )

    async def status(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(await self._json("GET", "/compute", {"jobId": job_id}))

    async def list(self, owner: str) -> list[JobInfo]:
        data = await self._json("GET", "/compute", {"owner": owner})
        return [JobInfo.model_validate(d) for d in data]

    async def stop(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(await self._json("PUT", "/compute", {"jobId": job_id}))

    async def delete(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(await self._json("DELETE", "/compute", {"jobId": job_id}))

    async def wait(self, job_id: str, timeout: float, since: int | None = None) -> JobInfo:
        params: dict[str, Any] = {"jobId": job_id, "timeout": min(timeout, 60)}
        if since is not None:
            params["since"] = since
        return JobInfo.model_validate(await self._json("GET", "/compute/wait", params))

    async def _stream(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return await self._send("GET", path, params)

    async def logs(self, job_id: str, follow: bool = False) -> AsyncIterator[bytes]:
        response = await self._stream("/logs", {"jobId": job_id, "follow": follow})
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()

    async def result(self, job_id: str, index: int) -> tuple[ResultFile, AsyncIterator[bytes]]:
        response = await self._stream("/result", {"jobId": job_id, "index": index})
        entry = ResultFile.model_validate_json(response.headers["X-Atoll-Result"])

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return entry, body()

    async def results(self, job_id: str, offset: int = 0, limit: int = RESULTS_PAGE) -> ResultsPage:
        params = {"jobId": job_id, "offset": offset, "limit": limit}
        return ResultsPage.model_validate(await self._json("GET", "/results", params))

    async def aclose(self) -> None:
        await self._client.aclose()
