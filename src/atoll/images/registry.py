"""A client of the OCI distribution API (v2) for one registry the operator lists.

It fetches manifests and blobs, answering the registry's Basic or Bearer challenge with the
operator's credentials. Only the listed registry is contacted first; a token realm or a blob
redirect it names is followed (the operator trusts that registry), but credentials are never
sent to another origin than the one that asked for them. Nothing here puts a credential, a
token or a response body into an exception or a log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from atoll.images.access import RegistryAccess
from atoll.images.errors import (
    DigestMismatch,
    ImageNotFound,
    ImageTooLarge,
    RegistryUnavailable,
)

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

MAX_REDIRECTS = 3
MAX_TOKEN_BYTES = 64 << 10
CHUNK = 1 << 20
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """Manifests and blobs of one registry; use as a context manager."""

    def __init__(
        self,
        access: RegistryAccess,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._access = access
        # trust_env off: no proxy from the environment and no ~/.netrc credentials
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            headers={"Accept-Encoding": "identity", "User-Agent": "atoll"},
        )
        self._auth: dict[str, str] = {}

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def manifest(self, repository: str, reference: str, max_bytes: int) -> tuple[bytes, str]:
        """The manifest's bytes, exactly as served, and its media type."""
        url = f"{self._access.base_url}/v2/{repository}/manifests/{reference}"
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        with self._stream(url, repository, headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes(CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise ImageTooLarge("the image's manifest exceeds its size cap")
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return bytes(body), media_type

    def blob(
        self,
        repository: str,
        digest: str,
        size: int,
        dest: Path,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Stream the blob into ``dest``, verified against ``digest`` and ``size``: a blob that
        does not match is deleted and DigestMismatch raised."""
        url = f"{self._access.base_url}/v2/{repository}/blobs/{digest}"
        hasher = hashlib.sha256()
        done = 0
        try:
            with self._stream(url, repository, {}) as response, dest.open("xb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    done += len(chunk)
                    if done > size:
                        raise DigestMismatch(f"blob {digest} is longer than its descriptor says")
                    hasher.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            if done != size or "sha256:" + hasher.hexdigest() != digest:
                raise DigestMismatch(f"blob {digest} does not match its digest")
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    @contextmanager
    def _stream(
        self, url: str, repository: str, headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        scope = f"repository:{repository}:pull"
        try:
            for attempt in range(2):
                sent = dict(headers)
                if scope in self._auth:
                    sent["Authorization"] = self._auth[scope]
                response = self._follow(url, sent)
                if response.status_code == 401 and attempt == 0:
                    challenge = response.headers.get("www-authenticate", "")
                    response.close()
                    self._auth[scope] = self._answer(challenge, scope)
                    continue
                break
            try:
                _check_status(response)
                yield response
            finally:
                response.close()
        except httpx.HTTPError as exc:
            # the exception's text names the URL only, but its type is all a status needs
            raise RegistryUnavailable(
                f"the image registry could not be reached ({type(exc).__name__})"
            ) from None

    def _follow(self, url: str, headers: dict[str, str]) -> httpx.Response:
        first = current = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if (current.scheme, current.netloc) != (first.scheme, first.netloc):
                # a redirect to another origin (a blob store): never with our credentials
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            request = self._http.build_request("GET", current, headers=headers)
            response = self._http.send(request, stream=True)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location", "")
            response.close()
            if not location:
                raise RegistryUnavailable("the image registry redirected nowhere")
            current = current.join(location)
            if current.scheme not in ("http", "https"):
                raise RegistryUnavailable("the image registry redirected to a non-HTTP address")
        raise RegistryUnavailable("the image registry redirected too many times")

    def _answer(self, challenge: str, scope: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        basic = httpx.BasicAuth(self._access.username, self._access.password.get_secret_value())
        if scheme.lower() == "basic":
            if not self._access.has_credentials:
                raise RegistryUnavailable("the image registry asks for credentials; none are set")
            return _basic_header(basic)
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryUnavailable("the image registry asks for an unsupported authentication")
        realm = httpx.URL(params["realm"])
        if realm.scheme != "https" and not (realm.scheme == "http" and self._access.insecure):
            raise RegistryUnavailable("the image registry's token service is not HTTPS")
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        auth = basic if self._access.has_credentials else None
        try:
            with self._http.stream("GET", realm, params=query, auth=auth) as response:
                if response.status_code in (401, 403):
                    raise RegistryUnavailable("the image registry refused the credentials")
                if response.status_code != 200:
                    raise RegistryUnavailable(
                        f"the image registry's token service answered {response.status_code}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes(CHUNK):
                    body += chunk
                    if len(body) > MAX_TOKEN_BYTES:
                        raise RegistryUnavailable("the image registry's token is too large")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(
                f"the image registry's token service could not be reached ({type(exc).__name__})"
            ) from None
        token = _token(bytes(body))
        return f"Bearer {token}"


def _basic_header(auth: httpx.BasicAuth) -> str:
    request = httpx.Request("GET", "http://localhost/")
    flow = auth.auth_flow(request)
    return next(flow).headers["Authorization"]


def _token(body: bytes) -> str:
    try:
        data = json.loads(body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        raise RegistryUnavailable("the image registry's token service gave no usable token")
    return token


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (401, 403):
        raise RegistryUnavailable(f"the image registry refused the credentials ({status})")
    if status == 404:
        raise ImageNotFound("the image registry has no such image or blob")
    raise RegistryUnavailable(f"the image registry answered {status}")
