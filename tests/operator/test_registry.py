"""One conformance suite for the WorkflowRegistry interface, run against the in-process
registry and against a standalone operator service reached over signed HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from atoll.config import load_settings
from atoll.db import connect
from atoll.errors import BadRequest, Conflict, NotFound
from atoll.models.job import (
    RESULTS_PAGE,
    STATUS_RESULTS,
    Workflow,
    WorkflowAlgorithm,
    WorkflowInput,
)
from atoll.models.status import JobStatus
from atoll.node import build_operator, operator_app
from atoll.operator.client import OperatorClient
from atoll.operator.http import H_ADDRESS, H_NONCE, H_SIGNATURE, PREFIX, request_message
from atoll.operator.registry import WorkflowRegistry
from atoll.server import BackgroundServer
from atoll.signing import Key
from tests.helpers import input_file, public_dir, require_sandbox
from tests.homes import init_home

OWNER = "0x" + "0a" * 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    require_sandbox()
    init_home(tmp_path / "home")
    return tmp_path / "home"


@pytest.fixture
def provider_key() -> Key:
    return Key.generate()


@pytest.fixture
def operator_url(home: Path, provider_key: Key) -> Iterator[str]:
    settings = load_settings(home, job_wall_seconds=20.0)
    with BackgroundServer(operator_app(settings, {provider_key.address})) as url:
        yield url


@pytest.fixture(params=["in-process", "http"])
async def registry(
    request: pytest.FixtureRequest, home: Path, provider_key: Key
) -> AsyncIterator[WorkflowRegistry]:
    if request.param == "in-process":
        settings = load_settings(home, job_wall_seconds=20.0)
        node = build_operator(settings, connect(settings.db_url))
        node.engine.recover()
        yield node.registry
        node.engine.shutdown()
    else:
        url = request.getfixturevalue("operator_url")
        client = OperatorClient(url, provider_key)
        yield client
        await client.aclose()


def workflow(tmp_path: Path, code: str, owner: str = OWNER) -> Workflow:
    # jobs run as users of their own, and tmp_path is private to root
    data = public_dir() / "in.csv"
    data.write_text("1,2\n")
    did = "did:atoll:" + "cd" * 32
    return Workflow(
        owner=owner,
        inputs=[
            WorkflowInput(did=did, ddo={"id": did}, locations=[str(data)], files=[input_file(data)])
        ],
        algorithm=WorkflowAlgorithm(rawcode=code),
    )


async def read(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in stream])


@pytest.mark.anyio
async def test_register_wait_result(registry: WorkflowRegistry, tmp_path: Path) -> None:
    code = "print(open('/data/inputs/' + __import__('os').environ['DIDS'][2:-2] + '/0').read())"
    info = await registry.register(workflow(tmp_path, code))
    assert info.status == JobStatus.QUEUED and info.owner == OWNER
    done = await registry.wait(info.jobId, 30)
    assert done.status == JobStatus.FINISHED, done.statusText
    entry, stream = await registry.result(info.jobId, 0)
    assert entry.filename == "algorithm.log"
    assert await read(stream) == b"1,2\n\n"
    assert await read(registry.logs(info.jobId)) == b"1,2\n\n"
    with pytest.raises(NotFound):
        await registry.result(info.jobId, 5)
    assert [j.jobId for j in await registry.list(OWNER)] == [info.jobId]
    assert await registry.list("0x" + "0b" * 20) == []


@pytest.mark.anyio
async def test_stop_then_delete(registry: WorkflowRegistry, tmp_path: Path) -> None:
    info = await registry.register(workflow(tmp_path, "import time; time.sleep(60)"))
    while info.status != JobStatus.RUNNING:
        info = await registry.wait(info.jobId, 30, since=info.status)
    with pytest.raises(Conflict):
        await registry.delete(info.jobId)
    await registry.stop(info.jobId)
    info = await registry.wait(info.jobId, 30)
    assert info.status == JobStatus.STOPPED
    with pytest.raises(Conflict):
        await registry.stop(info.jobId)
    removed = await registry.delete(info.jobId)
    assert removed.removed == 1
    with pytest.raises(NotFound):
        await registry.result(info.jobId, 0)


@pytest.mark.anyio
async def test_unknown_job(registry: WorkflowRegistry) -> None:
    with pytest.raises(NotFound):
        await registry.status("nope")


def test_unsigned_or_unknown_callers_are_refused(operator_url: str, provider_key: Key) -> None:
    url = operator_url + PREFIX + "/compute"
    assert httpx.get(url, params={"owner": OWNER}).status_code == 401

    def signed(key: Key, nonce: int, address: str = "") -> httpx.Response:
        query = f"owner={OWNER}"
        sig = key.sign(request_message("GET", PREFIX + "/compute", query, b"", nonce))
        headers = {H_ADDRESS: address or key.address, H_NONCE: str(nonce), H_SIGNATURE: sig}
        return httpx.get(f"{url}?{query}", headers=headers)

    five, six = provider_key.next_nonce(), provider_key.next_nonce()
    assert signed(Key.generate(), five).status_code == 403
    assert signed(provider_key, five).status_code == 200
    assert signed(provider_key, five).status_code == 401  # replayed
    assert signed(Key.generate(), six, address=provider_key.address).status_code == 401
    assert signed(provider_key, six).status_code == 200
    # a nonce far from the operator's clock is refused
    assert signed(provider_key, 5).status_code == 401


@pytest.mark.anyio
async def test_results_beyond_the_status_are_paged_and_served(
    registry: WorkflowRegistry, tmp_path: Path
) -> None:
    code = (
        "for i in range(70):\n"
        "    open(f'/data/outputs/r{i:02}', 'w').write(str(i))\n"
        "open('/data/outputs/z-日本語.txt', 'w').write('named')\n"
    )
    info = await registry.wait((await registry.register(workflow(tmp_path, code))).jobId, 60)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert (info.resultCount, len(info.results)) == (72, STATUS_RESULTS)
    page = await registry.results(info.jobId, 60, 20)
    assert [r.index for r in page.results] == list(range(60, 72))
    assert page.resultCount == 72 and page.resultsSha256 == info.resultsSha256
    # served by index whether or not the status lists it, whatever its name
    entry, stream = await registry.result(info.jobId, 70)
    assert entry.filename == "z-日本語.txt" and await read(stream) == b"named"
    with pytest.raises(BadRequest):
        await registry.results(info.jobId, 0, RESULTS_PAGE + 1)
