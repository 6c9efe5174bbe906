"""Jobs whose algorithm runs in an image, through the real engine: a real registry (with
basic auth), the node's ImageStore, the bubblewrap sandbox and the job store.

What is tested is the whole way a job takes: the checks made again before any connection,
the pull's progress in the job's status, the run in the image's root, a status of its own for
each way an image fails, the image's credentials kept out of everything a consumer or a job
sees, and a provider that goes on running jobs afterwards.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atoll.config import load_settings
from atoll.db import connect
from atoll.images.access import RegistryAccess
from atoll.images.reference import ImageReference
from atoll.models.environment import Environment
from atoll.models.job import ContainerRun, Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus
from atoll.node import OperatorNode, build_operator
from tests.helpers import input_file, public_dir, require_sandbox
from tests.homes import init_home
from tests.images.conftest import (
    PYTHON_RECIPE,
    PushedImage,
    Registry,
    build_debian_layout,
    need,
)
from tests.images.oci import Image, Layer, entry, image_of, tar_bytes
from tests.images.test_store import HOSTILE

OWNER = "0x" + "0a" * 20
MB = 1 << 20
ENTRYPOINT = "python3 $ALGO"
DID = "did:atoll:" + "cd" * 32


class Node:
    """An operator node (engine, job store, sandbox, image store) over a fresh home, and
    every status change of its jobs."""

    def __init__(self, home: Path, **settings: Any) -> None:
        init_home(home)
        self.home = home
        self.settings = load_settings(home, job_wall_seconds=60.0, **settings)
        self.node: OperatorNode = build_operator(self.settings, connect(self.settings.db_url))
        self.node.engine.recover()
        self.moves: list[tuple[str, JobStatus, str]] = []
        self._lock = threading.Lock()
        jobs = self.node.jobs
        real_advance, real_start = jobs.advance, jobs.start_attempt

        def advance(job_id: str, status: JobStatus, text: str = "", *a: Any, **k: Any) -> bool:
            with self._lock:
                self.moves.append((job_id, status, text))
            return real_advance(job_id, status, text, *a, **k)

        def start_attempt(job_id: str, status: JobStatus = JobStatus.CONFIGURING) -> bool:
            with self._lock:
                self.moves.append((job_id, status, status.text))
            return real_start(job_id, status)

        jobs.advance = advance  # type: ignore[method-assign]
        jobs.start_attempt = start_attempt  # type: ignore[method-assign]

    def run(self, workflow: Workflow, timeout: float = 120.0) -> Job:
        job_id = uuid.uuid4().hex
        self.node.jobs.create(job_id, workflow)
        self.node.engine.submit(job_id)
        deadline = time.monotonic() + timeout
        while not self.node.jobs.record(job_id).status.terminal:
            assert time.monotonic() < deadline, f"job {job_id} did not end"
            time.sleep(0.05)
        info = self.node.jobs.info(job_id)
        files: dict[str, bytes] = {}
        for result in info.results:
            with self.node.engine.open_result(job_id, result.index) as stream:
                files[result.filename] = stream.read()
        with self._lock:
            moves = [(status, text) for jid, status, text in self.moves if jid == job_id]
        return Job(job_id, JobStatus(info.status), info.statusText, moves, files)

    def close(self) -> None:
        self.node.engine.shutdown()


class Job:
    def __init__(
        self,
        job_id: str,
        status: JobStatus,
        text: str,
        moves: list[tuple[JobStatus, str]],
        files: dict[str, bytes],
    ) -> None:
        self.job_id = job_id
        self.status = status
        self.text = text
        self.moves = moves
        self.files = files

    @property
    def log(self) -> str:
        return self.files.get("algorithm.log", b"").decode(errors="replace")

    @property
    def statuses(self) -> list[JobStatus]:
        return [status for status, _ in self.moves]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    require_sandbox()
    need("umoci", "busybox")
    made: list[Node] = []

    def make(
        registries: tuple[RegistryAccess, ...],
        images: list[str],
        cache_mb: int = 1024,
        name: str = "home",
    ) -> Node:
        env = Environment(id="default", images=images, max_duration=60.0, memory_mb=256)
        node = Node(
            tmp_path / name,
            image_registries=registries,
            image_cache_mb=cache_mb,
            environments=(env,),
        )
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


def workflow(code: str, image: str | None, entrypoint: str = ENTRYPOINT) -> Workflow:
    data = public_dir() / "rows.csv"
    data.write_text("a,b\n1,2\n")
    container = ContainerRun(image=image, entrypoint=entrypoint) if image else None
    return Workflow(
        owner=OWNER,
        inputs=[
            WorkflowInput(did=DID, ddo={"id": DID}, locations=[str(data)], files=[input_file(data)])
        ],
        algorithm=WorkflowAlgorithm(rawcode=textwrap.dedent(code), container=container),
    )


def python_layer() -> Layer:
    """The single layer of the Debian test image with Python's standard library."""
    layout = build_debian_layout(PYTHON_RECIPE, "debian-python3-full")
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    blob = (blobs / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()
    return Layer(gzip.decompress(blob), blob)


# -- a job in an image ----------------------------------------------------------------------


RUN_CODE = """
    import json, os, sys
    rows = open("/data/inputs/" + json.loads(os.environ["DIDS"])[0] + "/0").read()
    with open("/data/outputs/seen.json", "w") as f:
        json.dump({"rows": rows, "executable": sys.executable, "argv": sys.argv,
                   "top": sorted(os.listdir("/")), "json_module": json.__file__,
                   "root_writable": os.access("/", os.W_OK),
                   "host_marker": os.path.exists(os.environ.get("MARKER", "/nonexistent"))}, f)
    print("ran in the image")
    """


def test_a_job_runs_in_its_image_pulled_once_with_progress(
    make_node: Callable[..., Node], registry: Registry, debian_python_image: PushedImage
) -> None:
    reference = debian_python_image.reference(registry)
    node = make_node((registry.access(),), [debian_python_image.digest])
    first = node.run(workflow(RUN_CODE, reference))
    assert first.status is JobStatus.FINISHED, (first.text, first.log)
    seen = json.loads(first.files["seen.json"])
    assert seen["rows"] == "a,b\n1,2\n"
    assert seen["argv"] == ["/data/transformations/algorithm"]
    assert seen["executable"].startswith("/usr/bin/python3")
    assert seen["json_module"].startswith("/usr/lib/python3.11/json/")
    assert seen["root_writable"] is False
    assert "data" in seen["top"] and "usr" in seen["top"]
    assert "ran in the image" in first.log

    # pulling (11) with bytes done of the total, unpacking, then configuring (20) and on
    statuses = first.statuses
    assert statuses[0] is JobStatus.PULLING_IMAGE
    assert statuses.index(JobStatus.CONFIGURING) > statuses.index(JobStatus.PULLING_IMAGE)
    texts = [text for status, text in first.moves if status is JobStatus.PULLING_IMAGE]
    assert any(" of " in t and t.endswith(" MB") for t in texts), texts
    assert "Unpacking image" in texts
    assert statuses[-3:] == [JobStatus.RUNNING, JobStatus.PUBLISHING, JobStatus.FINISHED]

    # the second job finds the image in the cache: no pull, straight to configuring
    second = node.run(workflow(RUN_CODE, reference))
    assert second.status is JobStatus.FINISHED, second.text
    assert JobStatus.PULLING_IMAGE not in second.statuses
    assert second.statuses[0] is JobStatus.CONFIGURING


def test_a_repository_allowlist_and_a_quoted_entrypoint(
    make_node: Callable[..., Node], registry: Registry, debian_python_image: PushedImage
) -> None:
    reference = debian_python_image.reference(registry)
    node = make_node((registry.access(),), [f"{registry.host}/{debian_python_image.repository}"])
    code = "import sys, json; print('ARGS ' + json.dumps(sys.argv[1:]))"
    job = node.run(workflow(code, reference, entrypoint="python3 -I $ALGO 'two words' --in=$ALGO"))
    assert job.status is JobStatus.FINISHED, job.text
    # split like shell words, never run by a shell: no expansion but $ALGO's
    assert 'ARGS ["two words", "--in=/data/transformations/algorithm"]' in job.log


def test_a_command_the_image_lacks_fails_provisioning(
    make_node: Callable[..., Node], registry: Registry, debian_python_image: PushedImage
) -> None:
    node = make_node((registry.access(),), ["*"])
    reference = debian_python_image.reference(registry)
    job = node.run(workflow("print('x')", reference, entrypoint="node $ALGO"))
    assert job.status is JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert "image-command-missing" in job.text and "'node'" in job.text
    quoted = node.run(workflow("print('x')", reference, entrypoint="python3 '$ALGO"))
    assert quoted.status is JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert "quotes" in quoted.text


# -- refused before any connection -----------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bool]]]:
    """A TCP port that records whether anything connected to it."""
    accepted: list[bool] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(True)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    server.close()


def test_images_the_engine_may_not_run_are_refused_without_a_connection(
    make_node: Callable[..., Node], registry: Registry, listener: tuple[str, list[bool]]
) -> None:
    unlisted, accepted = listener
    digest = "sha256:" + "ab" * 32
    listed = RegistryAccess(host=unlisted, insecure=True)
    node = make_node((registry.access(),), [f"{registry.host}/allowed"])
    cases = {
        # on a registry the operator does not list
        f"{unlisted}/allowed@{digest}": "image-registry-not-allowed",
        # not in the environment's allowlist
        f"{registry.host}/other@{digest}": "image-not-allowed",
        # a tag, not a digest
        f"{registry.host}/allowed:latest": "image-not-allowed",
    }
    for image, code in cases.items():
        job = node.run(workflow("print('ran')", image))
        assert job.status is JobStatus.IMAGE_NOT_ALLOWED, job.text
        assert code in job.text
        assert JobStatus.PULLING_IMAGE not in job.statuses
    # a node that lists that registry but whose environment takes no image at all
    closed = make_node((listed,), [], name="closed")
    job = closed.run(workflow("print('ran')", f"{unlisted}/allowed@{digest}"))
    assert job.status is JobStatus.IMAGE_NOT_ALLOWED
    # and a node that lists no registry runs no image
    bare = make_node((), ["*"], name="bare")
    job = bare.run(workflow("print('ran')", f"{unlisted}/allowed@{digest}"))
    assert job.status is JobStatus.IMAGE_NOT_ALLOWED
    assert "image-no-registry" in job.text
    assert accepted == []


# -- hostile images --------------------------------------------------------------------------


def _tree(root: Path, skip: tuple[Path, ...]) -> set[tuple[str, int]]:
    """Every path under ``root`` but those under ``skip`` and the store's journals, with the
    link count of each file."""
    found = set()
    for path in root.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        links = path.stat().st_nlink if path.is_file() and not path.is_symlink() else 0
        found.add((str(path), links))
    return found


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_image_fails_the_job_with_its_own_status_and_the_node_goes_on(
    make_node: Callable[..., Node], registry: Registry, tmp_path: Path, case: str
) -> None:
    layers, error = HOSTILE[case]
    digest = registry.pusher.image(f"hostile-job/{case}", image_of(*layers))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    # the bomb's 48 MiB of zeros gzip to under 100 KiB; the cap is 32 MiB
    node = make_node((registry.access(),), ["*"], cache_mb=32)
    skip = (node.settings.images_dir, node.settings.jobs_dir)
    before = _tree(tmp_path, skip)
    job = node.run(workflow("print('ran')", f"{registry.host}/hostile-job/{case}@{digest}"))
    expected = JobStatus.IMAGE_TOO_LARGE if case == "bomb" else JobStatus.IMAGE_REFUSED
    assert job.status is expected, job.text
    assert f"({error.code})" in job.text
    assert JobStatus.RUNNING not in job.statuses
    # nothing written outside the cache, nothing left in it
    assert _tree(tmp_path, skip) == before
    assert (outside / "secret").read_text() == "keep"
    assert (outside / "secret").stat().st_nlink == 1
    assert not Path("/escaped").exists()
    assert list((node.settings.images_dir / "entries").iterdir()) == []
    assert list((node.settings.images_dir / "work").iterdir()) == []
    # the provider is healthy: the next job runs
    healthy = node.run(workflow("print('still fine')", None))
    assert healthy.status is JobStatus.FINISHED, healthy.text


def test_an_image_over_the_cache_cap_is_too_large(
    make_node: Callable[..., Node], registry: Registry, debian_python_image: PushedImage
) -> None:
    node = make_node((registry.access(),), ["*"], cache_mb=8)
    job = node.run(workflow("print('ran')", debian_python_image.reference(registry)))
    assert job.status is JobStatus.IMAGE_TOO_LARGE, job.text
    assert list((node.settings.images_dir / "entries").iterdir()) == []


def test_set_id_bits_of_an_image_do_not_reach_the_job(
    make_node: Callable[..., Node], registry: Registry
) -> None:
    setid = tar_bytes(
        [
            entry("usr/bin/sux", data=b"#!/bin/false\n", mode=0o4755),
            entry("usr/bin/sgx", mode=0o2755),
        ]
    )
    digest = registry.pusher.image("tests/setid-job", Image([python_layer(), Layer(setid)]))
    node = make_node((registry.access(),), ["*"])
    code = """
        import os, stat
        modes = [os.stat(p).st_mode for p in ("/usr/bin/sux", "/usr/bin/sgx")]
        print("SETID", any(m & (stat.S_ISUID | stat.S_ISGID) for m in modes))
        """
    job = node.run(workflow(code, f"{registry.host}/tests/setid-job@{digest}"))
    assert job.status is JobStatus.FINISHED, job.text
    assert "SETID False" in job.log


# -- credentials -----------------------------------------------------------------------------


def test_registry_credentials_reach_no_status_log_error_or_job(
    make_node: Callable[..., Node],
    registry: Registry,
    debian_python_image: PushedImage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The registry asks for basic auth (htpasswd): the pull uses the password, and nothing a
    consumer, a job or the provider's log sees holds it."""
    caplog.set_level(logging.DEBUG)
    secret = registry.password
    reference = debian_python_image.reference(registry)
    node = make_node((registry.access(),), ["*"])
    code = """
        import os
        found = []
        for top in ("/etc", "/run", "/tmp", "/data", "/proc/self"):
            for dirpath, _, files in os.walk(top):
                for name in files:
                    try:
                        with open(os.path.join(dirpath, name), "rb") as f:
                            if os.environ["NEEDLE"].encode() in f.read(1 << 20):
                                found.append(os.path.join(dirpath, name))
                    except OSError:
                        pass
        print("ENV", sorted(os.environ))
        print("FOUND", found)
        """
    wf = workflow(code, reference)
    # the job looks for the password by a name that is not it: its reversal
    wf.algorithm.rawcode = wf.algorithm.rawcode.replace(
        'os.environ["NEEDLE"].encode()', f"{secret[::-1]!r}[::-1].encode()"
    )
    job = node.run(wf)
    assert job.status is JobStatus.FINISHED, job.text
    assert "FOUND []" in job.log
    # a wrong password: the pull fails, and says so without either password
    wrong = make_node((registry.access(password="not-" + secret),), ["*"], name="wrong")
    refused = wrong.run(workflow("print('ran')", reference))
    assert refused.status is JobStatus.IMAGE_PULL_FAILED
    assert "credentials" in refused.text
    for seen in (job, refused):
        everything = [
            seen.text,
            *(t for _, t in seen.moves),
            *(f.decode(errors="replace") for f in seen.files.values()),
        ]
        for text in everything:
            assert secret not in text
            assert registry.username not in text
    assert secret not in caplog.text
    assert registry.username not in caplog.text
    for path in node.home.rglob("*"):
        if path.is_file() and not path.is_symlink() and "images" not in path.parts:
            assert secret.encode() not in path.read_bytes(), path
    assert os.environ.get("ATOLL_IMAGE_REGISTRIES") is None


def test_a_cache_held_full_by_images_in_use_fails_the_job_until_they_are_let_go(
    make_node: Callable[..., Node], registry: Registry
) -> None:
    held, wanted = (
        registry.pusher.image(f"tests/full{i}", image_of([entry("f", data=os.urandom(3 * MB))]))
        for i in range(2)
    )
    node = make_node((registry.access(),), ["*"], cache_mb=4)
    store = node.node.engine.images
    assert store is not None
    in_use = ImageReference.parse(f"{registry.host}/tests/full0@{held}")
    with store.acquire(in_use):  # as a running job holds its image
        job = node.run(workflow("print('ran')", f"{registry.host}/tests/full1@{wanted}"))
    assert job.status is JobStatus.IMAGE_CACHE_FULL, job.text
    assert "image-cache-full" in job.text
    # once let go, the image in use is evicted for the next one; that one has no Python, so
    # the job ends at its entrypoint, past the cache
    again = node.run(workflow("print('ran')", f"{registry.host}/tests/full1@{wanted}"))
    assert again.status is JobStatus.ALGORITHM_PROVISIONING_FAILED, again.text
    assert store.cache.contains(wanted) and not store.cache.contains(held)


def test_a_stop_during_the_pull_ends_the_job_and_keeps_nothing(
    make_node: Callable[..., Node], registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = registry.pusher.image("tests/stopped", image_of([entry("f", data=os.urandom(2 * MB))]))
    node = make_node((registry.access(),), ["*"])
    store = node.node.engine.images
    assert store is not None
    real_pull = store.puller.pull

    def stop_then_pull(*args: Any, **kwargs: Any) -> Any:
        # the consumer stops the job as its pull begins
        [job_id] = {jid for jid, status, _ in node.moves if status is JobStatus.PULLING_IMAGE}
        node.node.engine.stop(job_id)
        return real_pull(*args, **kwargs)

    monkeypatch.setattr(store.puller, "pull", stop_then_pull)
    job = node.run(workflow("print('ran')", f"{registry.host}/tests/stopped@{digest}"))
    assert job.status is JobStatus.STOPPED, job.text
    assert JobStatus.RUNNING not in job.statuses
    assert not store.cache.contains(digest)
    assert list((node.settings.images_dir / "work").iterdir()) == []
