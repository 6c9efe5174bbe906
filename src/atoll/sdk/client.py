"""The consumer's and publisher's client for a provider. Every job request is signed with the
caller's key; the connection is kept alive between calls."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from atoll import signing
from atoll.errors import (
    AtollError,
    AuthError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
)
from atoll.errors import RemoteError as RemoteError
from atoll.home import default_home
from atoll.models.ddo import (
    DDO,
    AccessOffer,
    AlgorithmContainer,
    ComputePolicy,
    Metadata,
    files_checksum,
)
from atoll.models.environment import Resources
from atoll.models.job import (
    RESULTS_PAGE,
    JobInfo,
    PublishOutput,
    ResultFile,
    ResultsPage,
    result_path,
)
from atoll.models.mock import DryRunStatus, MockOffer, MockView
from atoll.models.receipt import SignedReceipt
from atoll.models.source import REMOTE_SCHEMES, SourceAccess
from atoll.models.status import JobStatus
from atoll.sdk.endpoint import provider_url
from atoll.sdk.images import check_image, find_environment
from atoll.sdk.wallet import Wallet
from atoll.signing import Key

_ERRORS: dict[int, type[AtollError]] = {
    400: BadRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: TooLarge,
    503: Unavailable,
}


def _error(response: httpx.Response) -> AtollError:
    try:
        message = str(response.json().get("error") or response.text)
    except ValueError:
        message = response.text or response.reason_phrase
    if response.status_code == 429:
        return RateLimited(message, _retry_after(response))
    cls = _ERRORS.get(response.status_code)
    if cls is not None:
        return cls(message)
    return RemoteError(f"provider error {response.status_code}: {message}", response.status_code)


def _retry_after(response: httpx.Response) -> int:
    """The provider's ``Retry-After`` in seconds (a stranger's header: bounded, 1 if unclear)."""
    raw = response.headers.get("retry-after", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return 1
    return min(max(int(raw), 1), 3600)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_key(path: Path) -> Key:
    """The key in ``path``; a file that cannot be read is named in one line."""
    try:
        return Key.load(path)
    except OSError as exc:
        # a directory, an unreadable file: the path is the user's own, so naming it helps
        raise AuthError(f"cannot read the key file {path} ({exc.strerror})") from None


#: how often a waiting client looks at a job that pulls its image, whose progress is in the
#: status text (a long poll answers a change of status only)
PROGRESS_POLL_SECONDS = 1.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings of every client of this process, made once: each would otherwise
    read the whole CA bundle again, which costs more than a request to a local provider."""
    return httpx.create_ssl_context()


#: seconds an idle connection to the provider is kept for the next request: shorter than the
#: server keeps one open (5 s for a server's default, 20 for ``atoll serve``), so that a request
#: is never sent on a connection the server closes at that moment, which fails it unsent
#: (httpx's own default is the same 5 s as the server's: a race)
IDLE_CONNECTION_S = 3.0


class ProviderClient:
    """A provider's API, as its consumers and publishers use it: search and publish assets,
    order agreements (through :attr:`wallet`), start jobs, wait for them, fetch their logs,
    results and receipts. Requests that need it are signed with ``key``.

    :meth:`from_env` finds the provider and the key as the ``atoll`` command does."""

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        key_file: Path | None = None,
        *,
        need_key: bool = True,
        timeout: float = 90.0,
    ) -> ProviderClient:
        """A client for ``url``, else ``$ATOLL_PROVIDER_URL``, else the provider ``atoll serve``
        runs for ``$ATOLL_HOME``, else the default one; signing with the key in ``key_file``,
        else ``$ATOLL_KEY``, else ``$ATOLL_HOME/key``. Without ``need_key`` a missing key file
        means an unsigned client."""
        home = default_home()
        target = url or os.environ.get("ATOLL_PROVIDER_URL") or provider_url(home)
        env_key = os.environ.get("ATOLL_KEY")
        path = key_file or (Path(env_key) if env_key else home / "key")
        key = load_key(path) if need_key or path.exists() else None
        return cls(target, key, timeout=timeout)

    def __init__(
        self,
        url: str,
        key: Key | None = None,
        timeout: float = 90.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            verify=_tls_context(),
            limits=httpx.Limits(keepalive_expiry=IDLE_CONNECTION_S),
        )
        self._chain_info: dict[str, Any] | None = None
        self._wallet: Wallet | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _key(self) -> Key:
        if self.key is None:
            raise AuthError("this call is signed: give a key (--key or ATOLL_KEY)")
        return self.key

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, "/api/services" + path, **kwargs)
        except httpx.TransportError as exc:
            raise RemoteError(
                f"cannot reach the provider at {self.url} ({type(exc).__name__})"
            ) from None
        if not response.is_success:
            raise _error(response)
        return response

    def _signed(self, route: str, *parts: object) -> dict[str, Any]:
        key = self._key()
        nonce = key.next_nonce()
        text = signing.message(route, key.address, *parts, nonce)
        return {"consumerAddress": key.address, "nonce": nonce, "signature": key.sign(text)}

    def _send_signed(
        self,
        method: str,
        path: str,
        route: str,
        parts: tuple[object, ...],
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Sign and send; once more if the provider calls the nonce stale (used already by
        another client on this key, or made by a clock too far from the provider's)."""
        for attempt in range(2):
            signed = self._signed(route, *parts)
            try:
                if body is not None:
                    return self._send(method, path, json={**body, **signed})
                return self._send(method, path, params={**(params or {}), **signed})
            except AuthError as exc:
                if attempt or not signing.is_stale_nonce(exc.message):
                    raise
                self._resync(exc.message)
        raise AssertionError("unreachable")

    def _resync(self, message: str) -> None:
        """After a stale nonce: if it was the clock, sign with the provider's from now on."""
        if "clock" in message:
            key = self._key()
            key.adopt_clock(self.provider_time(key.address))

    def provider_time(self, address: str) -> int:
        """The provider's clock in the nonces' unit (microseconds since the epoch)."""
        data = self._send("GET", "/nonce", params={"userAddress": address}).json()
        return int(data["now"])

    # -- assets ----------------------------------------------------------------------------

    def nonce(self, address: str) -> int:
        return int(self._send("GET", "/nonce", params={"userAddress": address}).json()["nonce"])

    def search(
        self, q: str = "", tag: str = "", type: str = "", limit: int = 50, offset: int = 0
    ) -> tuple[int, list[DDO]]:
        params = {"q": q, "tag": tag, "type": type, "limit": limit, "offset": offset}
        data = self._send("GET", "/assets", params=params).json()
        return int(data["total"]), [DDO.model_validate(d) for d in data["assets"]]

    def asset(self, did: str) -> DDO:
        if not did:
            raise BadRequest("a DID is required")
        return DDO.model_validate(self._send("GET", f"/assets/{did}").json())

    def publish(
        self,
        metadata: Metadata,
        files: list[str],
        compute: ComputePolicy | None = None,
        timeout: int | None = None,
        price: int | None = None,
        access: AccessOffer | None = None,
        source_access: SourceAccess | None = None,
    ) -> DDO:
        """Publish on the provider; with ``access``, the files may also be downloaded under
        access agreements at its price. The provider registers the DID on chain in your name
        (naming itself as the one who serves it) before the asset becomes public, so that
        no one else can claim it; a DID already registered by someone else is refused.
        ``files`` are paths on the provider's host, or URL and S3 locations
        (``https://…``, ``s3://bucket/key?region=…&endpoint=…``) the provider fetches once,
        with ``access`` (headers, S3 keys); the provider keeps both private."""
        body: dict[str, Any] = {
            "metadata": metadata.model_dump(mode="json"),
            "files": [f if f.startswith(REMOTE_SCHEMES) else str(Path(f).resolve()) for f in files],
            "compute": (compute or ComputePolicy()).model_dump(mode="json"),
            "timeout": timeout,
            "price": price,
        }
        if access is not None:
            body["access"] = access.model_dump(mode="json")
        if source_access is not None:
            body["sourceAccess"] = source_access.model_dump(mode="json")
        parts = (signing.body_digest(body),)
        return DDO.model_validate(
            self._send_signed("POST", "/assets", "publish", parts, body=body).json()
        )

    def set_policy(self, did: str, compute: ComputePolicy) -> DDO:
        body: dict[str, Any] = {"compute": compute.model_dump(mode="json")}
        parts = (did, signing.body_digest(body))
        path = f"/assets/{did}/policy"
        ddo = DDO.model_validate(self._send_signed("PUT", path, "policy", parts, body=body).json())
        self.wallet.update(ddo)
        return ddo

    # -- chain -----------------------------------------------------------------------------

    def chain_info(self) -> dict[str, Any]:
        if self._chain_info is None:
            self._chain_info = dict(self._send("GET", "/chain").json())
        return self._chain_info

    @property
    def wallet(self) -> Wallet:
        if self._wallet is None:
            self._wallet = Wallet(self.chain_info(), self._key())
        return self._wallet

    def faucet(self) -> dict[str, Any]:
        """Gas money and tokens for your address (development chains only)."""
        body = {"address": self._key().address}
        data: dict[str, Any] = self._send("POST", "/faucet", json=body).json()
        return data

    def order(self, did: str) -> str:
        """Create a Service Agreement for ``did`` and lock its price in escrow; returns the
        agreement id."""
        return self.wallet.order(self.asset(did))

    # -- data access -----------------------------------------------------------------------

    def access_order(self, did: str) -> str:
        """Create an access agreement for ``did`` (downloading its files) and lock its price
        in escrow; returns the agreement id."""
        return self.wallet.order_access(self.asset(did))

    def access_agreement(self, did: str) -> str:
        """Your newest access agreement for ``did``, found in the chain's events."""
        from atoll.chain.records import did_bytes

        c = self.wallet.contracts
        me = self._key().address.lower()
        target = did_bytes(did)
        found = [
            ev
            for ev in c.events(c.book.deployed_block, names=["AccessAgreementCreated"])
            if bytes(ev.args["did"]) == target and str(ev.args["consumer"]).lower() == me
        ]
        if not found:
            raise NotFound(f"you have no access agreement for {did}: `atoll access order {did}`")
        return "0x" + bytes(found[-1].args["agreementId"]).hex()

    def access_files(self, did: str, agreement_id: str) -> list[dict[str, Any]]:
        """The files the agreement lets you download, each with its size and sha256, checked
        against the DDO's ``filesChecksum`` (which the DID's on-chain record binds)."""
        params = {"did": did, "agreementId": agreement_id}
        data = self._send_signed(
            "GET", "/accessFiles", "accessFiles", (did, agreement_id), params=params
        ).json()
        files = sorted(data["files"], key=lambda f: int(f["index"]))
        ddo = self.asset(did)
        if files_checksum([str(f["sha256"]) for f in files]) != ddo.filesChecksum:
            raise RemoteError(f"the provider's file digests do not match the DDO of {did}")
        return files

    def access_download(
        self,
        did: str,
        directory: Path,
        agreement_id: str,
        on_progress: Callable[[int, int, int], None] | None = None,
    ) -> list[Path]:
        """Download every file of ``did`` into ``directory`` as ``file-<index>``. Each file
        arrives as ``file-<index>.part``; a part left by a broken download is resumed with
        an HTTP Range request, and the file takes its name only once its sha256 is the
        published one. ``on_progress(index, bytes so far, size)`` follows each file."""
        files = self.access_files(did, agreement_id)
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        for f in files:
            index, size, digest = int(f["index"]), int(f["contentLength"]), str(f["sha256"])
            target = directory / f"file-{index}"
            if not (target.is_file() and _sha256_of(target) == digest):
                self._download_file(did, agreement_id, index, size, digest, target, on_progress)
            saved.append(target)
        return saved

    def _download_file(
        self,
        did: str,
        agreement_id: str,
        index: int,
        size: int,
        digest: str,
        target: Path,
        on_progress: Callable[[int, int, int], None] | None,
    ) -> None:
        part = target.with_name(target.name + ".part")
        have = part.stat().st_size if part.is_file() else 0
        if have > size:
            part.unlink()
            have = 0
        # hashed as it arrives when it starts afresh; a resumed part is hashed at the end
        running = hashlib.sha256() if have == 0 else None
        if have < size or size == 0:
            headers = {"Range": f"bytes={have}-"} if have else {}
            params = {"did": did, "agreementId": agreement_id, "index": index}
            with self._stream_signed(
                "/access", "access", (did, agreement_id, index), params, headers
            ) as response:
                if have and response.status_code != 206:
                    have, running = 0, hashlib.sha256()  # the whole file came back
                elif have and not response.headers.get("content-range", "").startswith(
                    f"bytes {have}-"
                ):
                    raise RemoteError(f"file {index} came back from another offset than asked")
                if response.headers.get("x-atoll-sha256", digest) != digest:
                    raise RemoteError(f"file {index} is served with another sha256 than listed")
                with part.open("r+b" if have else "wb") as out:
                    out.seek(have)
                    out.truncate()
                    done = have
                    try:
                        for chunk in response.iter_bytes(1 << 20):
                            out.write(chunk)
                            if running is not None:
                                running.update(chunk)
                            done += len(chunk)
                            if on_progress is not None:
                                on_progress(index, done, size)
                    except httpx.TransportError as exc:
                        raise RemoteError(
                            f"the download of file {index} broke off ({type(exc).__name__}); "
                            "run it again to resume"
                        ) from None
        got = running.hexdigest() if running is not None else _sha256_of(part)
        if got != digest:
            part.unlink(missing_ok=True)
            raise RemoteError(
                f"file {index} does not match its published sha256: the partial file was "
                "removed; run the download again"
            )
        os.replace(part, target)

    @contextlib.contextmanager
    def _stream_signed(
        self,
        path: str,
        route: str,
        parts: tuple[object, ...],
        params: dict[str, Any],
        headers: dict[str, str],
    ) -> Iterator[httpx.Response]:
        """A signed GET whose body is read as it arrives; once more on a stale nonce."""
        url = "/api/services" + path
        for attempt in range(2):
            with contextlib.ExitStack() as stack:
                signed = {**params, **self._signed(route, *parts)}
                try:
                    response = stack.enter_context(
                        self._http.stream("GET", url, params=signed, headers=headers)
                    )
                except httpx.TransportError as exc:
                    raise RemoteError(
                        f"cannot reach the provider at {self.url} ({type(exc).__name__})"
                    ) from None
                if not response.is_success:
                    response.read()
                    error = _error(response)
                    if attempt or not signing.is_stale_nonce(error.message):
                        raise error
                    self._resync(error.message)
                    continue
                yield response
                return

    # -- compute ---------------------------------------------------------------------------

    def environments(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._send("GET", "/computeEnvironments").json()
        return data

    def check_image(
        self,
        environment: str,
        algorithm_did: str = "",
        container: AlgorithmContainer | None = None,
    ) -> None:
        """Refuse (PolicyRefused) an algorithm whose image ``environment`` would not accept,
        judged by what the provider publishes of it; nothing is asked of any registry."""
        if algorithm_did and container is None:
            info = self.asset(algorithm_did).metadata.algorithm
            container = info.container if info is not None else None
        if container is None:
            return
        check_image(find_environment(self.environments(), environment), container)

    @staticmethod
    def _compute_body(
        dataset: str,
        algorithm_did: str,
        rawcode: str,
        parameters: dict[str, Any] | None,
        additional: dict[str, str] | None,
        environment: str,
        agreement_id: str,
        resources: Resources | None = None,
        container: AlgorithmContainer | None = None,
    ) -> dict[str, Any]:
        algorithm: dict[str, Any] = {"did": algorithm_did, "rawcode": rawcode}
        if container is not None:
            algorithm["container"] = container.model_dump(mode="json")
        return {
            "resources": resources.model_dump(mode="json") if resources else None,
            "dataset": {"did": dataset, "agreementId": agreement_id},
            "additionalDatasets": [
                {"did": d, "agreementId": a} for d, a in (additional or {}).items()
            ],
            "algorithm": algorithm,
            "parameters": parameters or {},
            "environment": environment,
        }

    def initialize(
        self,
        dataset: str,
        algorithm_did: str = "",
        rawcode: str = "",
        parameters: dict[str, Any] | None = None,
        additional: dict[str, str] | None = None,
        environment: str = "default",
        agreement_id: str = "",
        resources: Resources | None = None,
        container: AlgorithmContainer | None = None,
    ) -> dict[str, Any]:
        """Ask the provider whether it would run the job, and what it would cost. An image
        the environment would refuse (by its published allowlist and registries) is refused
        here first, without asking."""
        self.check_image(environment, algorithm_did, container)
        body = self._compute_body(
            dataset,
            algorithm_did,
            rawcode,
            parameters,
            additional,
            environment,
            agreement_id,
            resources,
            container,
        )
        body["consumerAddress"] = self._key().address
        data: dict[str, Any] = self._send("POST", "/initializeCompute", json=body).json()
        return data

    def start(
        self,
        dataset: str,
        algorithm_did: str = "",
        rawcode: str = "",
        parameters: dict[str, Any] | None = None,
        additional: dict[str, str | None] | None = None,
        environment: str = "default",
        agreement_id: str | None = None,
        resources: Resources | None = None,
        publish_output: PublishOutput | None = None,
        container: AlgorithmContainer | None = None,
    ) -> JobInfo:
        """Start a job. ``agreement_id`` None orders an agreement first (and pays for it);
        so does an additional dataset mapped to None. ``additional`` maps DIDs to agreement
        ids. Before paying for anything, the provider is asked whether it would accept the job
        (``initialize``), so that a refusal costs nothing. ``container``: the image raw code
        runs in (a published algorithm's is the one its DDO names)."""
        to_order = [d for d, a in (additional or {}).items() if a is None]
        if agreement_id is None or to_order:
            self.initialize(
                dataset,
                algorithm_did,
                rawcode,
                parameters,
                {d: a or "" for d, a in (additional or {}).items()},
                environment,
                "",
                resources,
                container,
            )
        if agreement_id is None:
            agreement_id = self.order(dataset)
        extra = {d: (a if a is not None else self.order(d)) for d, a in (additional or {}).items()}
        body = self._compute_body(
            dataset,
            algorithm_did,
            rawcode,
            parameters,
            extra,
            environment,
            agreement_id,
            resources,
            container,
        )
        if publish_output is not None:
            body["publishOutput"] = publish_output.model_dump(mode="json")
        parts = (dataset, signing.body_digest(body))
        response = self._send_signed("POST", "/compute", "compute", parts, body=body)
        return JobInfo.model_validate(response.json()[0])

    def status(self, job_id: str, wait: float = 0, since: int | None = None) -> JobInfo:
        params: dict[str, Any] = {"jobId": job_id}
        if wait:
            params["wait"] = wait
        if since is not None:
            params["since"] = since
        response = self._send_signed("GET", "/compute", "status", (job_id,), params=params)
        return JobInfo.model_validate(response.json()[0])

    def jobs(self) -> list[JobInfo]:
        response = self._send_signed("GET", "/compute", "status", ("",), params={"jobId": ""})
        return [JobInfo.model_validate(j) for j in response.json()]

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_change: Callable[[JobInfo], None] | None = None,
    ) -> JobInfo:
        """Block until the job ends. The provider answers the moment the status changes
        (long-poll), so this neither sleeps nor polls on a fixed interval."""
        deadline = None if timeout is None else time.monotonic() + timeout
        info = self.status(job_id)
        while not info.terminal:
            if on_change is not None:
                on_change(info)
            remaining = 30.0 if deadline is None else min(30.0, deadline - time.monotonic())
            if remaining <= 0:
                break
            if on_change is not None and info.status == JobStatus.PULLING_IMAGE:
                # a pull's progress changes the text, not the status: look again soon
                remaining = min(remaining, PROGRESS_POLL_SECONDS)
            info = self.status(
                job_id, wait=remaining, since=info.status if on_change is not None else None
            )
        if on_change is not None:
            on_change(info)
        return info

    def stop(self, job_id: str) -> JobInfo:
        response = self._send_signed("PUT", "/compute", "stop", (job_id,), body={"jobId": job_id})
        return JobInfo.model_validate(response.json()[0])

    def delete(self, job_id: str) -> JobInfo:
        params = {"jobId": job_id}
        response = self._send_signed("DELETE", "/compute", "delete", (job_id,), params=params)
        return JobInfo.model_validate(response.json()[0])

    def logs(self, job_id: str, follow: bool = False) -> Iterator[bytes]:
        url = "/api/services/computeLogs"
        timeout = httpx.Timeout(10.0, read=None) if follow else None
        for attempt in range(2):
            with contextlib.ExitStack() as stack:
                params = {**self._signed("logs", job_id), "jobId": job_id, "follow": follow}
                response = stack.enter_context(
                    self._http.stream("GET", url, params=params, timeout=timeout)
                )
                if not response.is_success:
                    response.read()
                    error = _error(response)
                    if attempt or not signing.is_stale_nonce(error.message):
                        raise error
                    self._resync(error.message)
                    continue
                yield from response.iter_raw()
                return

    def result(self, job_id: str, index: int) -> bytes:
        params = {"jobId": job_id, "index": index}
        parts = (job_id, index)
        return self._send_signed("GET", "/computeResult", "result", parts, params=params).content

    def receipt(self, job_id: str) -> SignedReceipt:
        """The job's execution receipt, signed by the provider."""
        params = {"jobId": job_id}
        response = self._send_signed("GET", "/computeReceipt", "receipt", (job_id,), params=params)
        return SignedReceipt.model_validate(response.json())

    def download(self, did: str, index: int) -> bytes:
        """One file of an asset whose access service allows you to download it."""
        params = {"did": did, "index": index}
        return self._send_signed(
            "GET", "/download", "download", (did, index), params=params
        ).content

    def results_page(self, job_id: str, offset: int = 0, limit: int = RESULTS_PAGE) -> ResultsPage:
        params = {"jobId": job_id, "offset": offset, "limit": limit}
        parts = (job_id, offset)
        response = self._send_signed("GET", "/computeResults", "results", parts, params=params)
        return ResultsPage.model_validate(response.json())

    def results(self, info: JobInfo) -> list[ResultFile]:
        """Every result of the job: those its status lists, or the whole list page by page."""
        if info.all_results_listed:
            return list(info.results)
        found: list[ResultFile] = []
        while len(found) < info.resultCount:
            page = self.results_page(info.jobId, len(found))
            if not page.results:
                break
            found += page.results
        if len(found) != info.resultCount:
            raise RemoteError("the provider listed fewer results than the job has")
        return found

    def download_results(self, info: JobInfo, directory: Path) -> list[Path]:
        """Save every result file under ``directory``, checking each file's sha256. All or
        nothing: the files are fetched into a staging folder beside the others and moved into
        place only once every one has arrived whole, so an error leaves no partial download."""
        held = {h.index for h in info.review.held} if info.review is not None else set()
        targets = [
            (entry, result_path(directory, entry.filename))
            for entry in self.results(info)
            if entry.index not in held
        ]
        if directory.exists() and not directory.is_dir():
            raise BadRequest(f"{directory} exists and is not a folder")
        fresh = not directory.exists()
        parent = directory.parent if fresh else directory
        parent.mkdir(parents=True, exist_ok=True)
        # made like any folder (not mkdtemp's 0700): it becomes ``directory`` when fresh
        staging = parent / f".atoll-download-{secrets.token_hex(8)}"
        staging.mkdir()
        try:
            for entry, target in targets:
                staged = staging / target.relative_to(directory)
                staged.parent.mkdir(parents=True, exist_ok=True)
                digest = self._save_result(info.jobId, entry.index, staged)
                if digest != entry.sha256:
                    raise RemoteError(f"result {entry.index} does not match its sha256")
            if fresh:
                staging.rename(directory)
            else:
                for _entry, target in targets:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / target.relative_to(directory), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [target for _entry, target in targets]

    def _save_result(self, job_id: str, index: int, path: Path) -> str:
        """Stream one result file into ``path``; its sha256."""
        digest = hashlib.sha256()
        url = "/api/services/computeResult"
        with contextlib.ExitStack() as stack:
            for attempt in range(2):
                params = {**self._signed("result", job_id, index), "jobId": job_id, "index": index}
                try:
                    response = stack.enter_context(self._http.stream("GET", url, params=params))
                except httpx.TransportError as exc:
                    raise RemoteError(
                        f"cannot reach the provider at {self.url} ({type(exc).__name__})"
                    ) from None
                if response.is_success:
                    break
                response.read()
                error = _error(response)
                if attempt or not signing.is_stale_nonce(error.message):
                    raise error
                self._resync(error.message)
            with path.open("wb") as out:
                try:
                    for chunk in response.iter_bytes():
                        digest.update(chunk)
                        out.write(chunk)
                except httpx.TransportError as exc:
                    raise RemoteError(
                        f"the download of result {index} broke off ({type(exc).__name__})"
                    ) from None
        return digest.hexdigest()

    # -- mock data and dry runs ------------------------------------------------------------

    def mock_infer(self, did: str, file_index: int = 0) -> MockView:
        """(Owner) infer a mock schema from the dataset's file; nothing is offered until
        :meth:`mock_approve`."""
        body = {"fileIndex": file_index}
        parts = (did, signing.body_digest(body))
        path = f"/assets/{did}/mock/schema"
        response = self._send_signed("POST", path, "mockInfer", parts, body=body)
        return MockView.model_validate(response.json())

    def mock_schema(self, did: str) -> MockView:
        """(Owner) the proposed or offered mock data of ``did``, with its schema."""
        path = f"/assets/{did}/mock/schema"
        response = self._send_signed("GET", path, "mockSchema", (did,), params={})
        return MockView.model_validate(response.json())

    def mock_approve(
        self, did: str, schema_sha256: str, rows: int = 100, seed: int = 0
    ) -> MockOffer:
        """(Owner) approve the schema whose digest is ``schema_sha256`` (as shown by
        :meth:`mock_schema`): mock rows are generated from it and offered."""
        body = {"schemaSha256": schema_sha256, "rows": rows, "seed": seed}
        parts = (did, signing.body_digest(body))
        path = f"/assets/{did}/mock/approve"
        response = self._send_signed("POST", path, "mockApprove", parts, body=body)
        return MockOffer.model_validate(response.json())

    def mock_attach(self, did: str, content: str) -> MockOffer:
        """(Owner) upload mock data (CSV text) for ``did`` and offer it."""
        body = {"content": content}
        parts = (did, signing.body_digest(body))
        path = f"/assets/{did}/mock"
        response = self._send_signed("PUT", path, "mockAttach", parts, body=body)
        return MockOffer.model_validate(response.json())

    def mock_offer(self, did: str) -> MockOffer:
        """The mock data ``did`` offers (NotFound if none)."""
        return MockOffer.model_validate(self._send("GET", f"/assets/{did}/mock").json())

    def mock_data(self, did: str) -> bytes:
        """The mock data file ``did`` offers, checked against its published sha256."""
        offer = self.mock_offer(did)
        data = self._send("GET", f"/assets/{did}/mock/file").content
        if hashlib.sha256(data).hexdigest() != offer.sha256:
            raise RemoteError(f"the mock data of {did} does not match its checksum")
        return data

    def dryrun_start(
        self,
        dataset: str,
        algorithm_did: str = "",
        rawcode: str = "",
        parameters: dict[str, Any] | None = None,
        additional: list[str] | None = None,
        environment: str = "default",
        resources: Resources | None = None,
    ) -> JobInfo:
        """Run the algorithm on the datasets' mock data: no agreement, no payment."""
        body = self._compute_body(
            dataset,
            algorithm_did,
            rawcode,
            parameters,
            dict.fromkeys(additional or [], ""),
            environment,
            "",
            resources,
        )
        parts = (dataset, signing.body_digest(body))
        response = self._send_signed("POST", "/dryrun", "dryrun", parts, body=body)
        return JobInfo.model_validate(response.json())

    def dryrun_status(self, job_id: str, wait: float = 0) -> DryRunStatus:
        params: dict[str, Any] = {"jobId": job_id}
        if wait:
            params["wait"] = wait
        response = self._send_signed("GET", "/dryrun", "dryrunStatus", (job_id,), params=params)
        return DryRunStatus.model_validate(response.json())

    def dryrun_wait(self, job_id: str, timeout: float | None = None) -> DryRunStatus:
        """Block until the dry run ends (long-poll); its status with the check report."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.dryrun_status(job_id)
        while not status.job.terminal:
            remaining = 30.0 if deadline is None else min(30.0, deadline - time.monotonic())
            if remaining <= 0:
                break
            status = self.dryrun_status(job_id, wait=remaining)
        return status

    def dryrun_result(self, job_id: str, index: int) -> bytes:
        """One output or log of a dry run."""
        params = {"jobId": job_id, "index": index}
        parts = (job_id, index)
        return self._send_signed(
            "GET", "/dryrunResult", "dryrunResult", parts, params=params
        ).content

    def dryrun_delete(self, job_id: str) -> JobInfo:
        """Remove an ended dry run's outputs and logs."""
        params = {"jobId": job_id}
        response = self._send_signed("DELETE", "/dryrun", "dryrunDelete", (job_id,), params=params)
        return JobInfo.model_validate(response.json())

    # -- the release queue (reviewers) -----------------------------------------------------

    def review_queue(self) -> list[dict[str, Any]]:
        """The held outputs and logs you may review: your datasets' and those whose output
        policy names you."""
        response = self._send_signed("GET", "/review", "review-list", ())
        items: list[dict[str, Any]] = response.json()
        return items

    def review_item(self, job_id: str, index: int) -> dict[str, Any]:
        """One checked file: the checks' report, its state, the decisions so far and its
        columns beside the inputs' columns."""
        params = {"jobId": job_id, "index": index}
        response = self._send_signed(
            "GET", "/review/item", "review-show", (job_id, index), params=params
        )
        item: dict[str, Any] = response.json()
        return item

    def review_file(self, job_id: str, index: int) -> bytes:
        """The bytes of a checked file, held or not (reviewers only)."""
        params = {"jobId": job_id, "index": index}
        return self._send_signed(
            "GET", "/review/file", "review-file", (job_id, index), params=params
        ).content

    def review(self, job_id: str, index: int, decision: str, reason: str) -> dict[str, Any]:
        """Approve or reject a held file, with a reason; the signed request is kept as your
        decision and bound into the file's release record."""
        body = {"jobId": job_id, "index": index, "decision": decision, "reason": reason}
        parts = (job_id, index, signing.body_digest(body))
        response = self._send_signed("POST", "/review", "review", parts, body=body)
        item: dict[str, Any] = response.json()
        return item

    def approve(self, job_id: str, index: int, reason: str) -> dict[str, Any]:
        return self.review(job_id, index, "approve", reason)

    def reject(self, job_id: str, index: int, reason: str) -> dict[str, Any]:
        return self.review(job_id, index, "reject", reason)
