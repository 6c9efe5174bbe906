"""Datasets at a URL and in S3, end to end through a real provider, a real sandbox and real
HTTP on loopback (the operator's ``source_hosts`` name 127.0.0.1 explicitly). S3 is the
stand-in of ``tests/conftest.py`` (moto's server on loopback): S3 itself cannot run here.

The same job on the same bytes from a local file, a URL and S3 gives the same receipt
checksums, and nothing a job or a consumer sees names the URL, the bucket or a credential;
a source that changed, vanished, fails or is refused ends the job with its own status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import BadRequest
from atoll.models.ddo import Metadata
from atoll.models.job import JobInfo
from atoll.models.source import SourceAccess
from atoll.models.status import JobStatus
from atoll.storage.s3_client import S3Credentials, S3Location, make_client
from tests.helpers import OPEN_DATA, Running, require_sandbox, running_provider
from tests.storage.origin import Origin, running_origin

DATA = b"a,b\n1,2\n3,4\n"
TOKEN = "Bearer publisher-token-5f3a9c"
KEYS = S3Credentials("AKIAPUBLISHERKEY0042", "publisher-s3-secret-8d1e77")
#: the job shows everything it can see: environment, mounts, inputs, DDOs
CODE = """
import json, os, pathlib
print(json.dumps(dict(os.environ)))
print(open('/proc/self/mountinfo').read())
for p in sorted(pathlib.Path('/data').rglob('*')):
    print(p)
    if p.is_file() and 'ddos' in p.parts:
        print(p.read_text())
did = json.loads(os.environ['DIDS'])[0]
data = open('/data/inputs/' + did + '/0').read()
open('/data/outputs/out.csv', 'w').write('n\\n' + data)
"""


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


@pytest.fixture
def provider(tmp_path: Path, origin: Origin, s3_endpoint: str) -> Iterator[Running]:
    require_sandbox()
    hosts = (f"http://127.0.0.1:{origin.port}", f"http://{s3_endpoint.removeprefix('http://')}")
    with running_provider(tmp_path / "home", source_hosts=hosts) as running:
        yield running


def publish(p: Running, name: str, location: str, access: SourceAccess | None = None) -> str:
    meta = Metadata(name=name, type="dataset", tags=["test"])
    return p.publisher.publish(meta, [location], OPEN_DATA, price=10, source_access=access).id


def run(p: Running, did: str) -> JobInfo:
    agreement = p.consumer.order(did)
    job = p.consumer.start(did, rawcode=CODE, agreement_id=agreement)
    return p.consumer.wait(job.jobId, timeout=90)


def s3_dataset(p: Running, s3_endpoint: str, bucket: str, key: str, name: str) -> str:
    loc = S3Location(bucket, key, endpoint=s3_endpoint)
    make_client(loc, KEYS).put_object(Bucket=bucket, Key=key, Body=DATA)
    access = SourceAccess(accessKeyId=KEYS.access_key_id, secretAccessKey=KEYS.secret_access_key)
    return publish(p, name, loc.text(), access)


def test_the_same_job_on_a_local_file_a_url_and_s3_gives_the_same_checksums_and_no_secret(
    provider: Running, origin: Origin, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    p = provider
    origin.files["hidden-name.csv"] = DATA
    origin.required = {"authorization": TOKEN}
    local = p.dataset(text=DATA.decode(), name="local", price=10, policy=OPEN_DATA)
    url = publish(
        p,
        "url",
        origin.url("/files/hidden-name.csv"),
        SourceAccess(headers={"Authorization": TOKEN}),
    )
    s3 = s3_dataset(p, s3_endpoint, s3_bucket, "secret-prefix/hidden-key.csv", "s3")

    seen: list[str] = []
    checksums = set()
    for did in (local, url, s3):
        info = run(p, did)
        assert info.status == JobStatus.FINISHED, info.statusText
        receipt = p.consumer.receipt(info.jobId)
        checksums.add((receipt.receipt.inputs[0].checksum, receipt.receipt.results[0].sha256))
        out = tmp_path / info.jobId
        p.consumer.download_results(info, out)
        assert (out / "out.csv").read_bytes() == b"n\n" + DATA
        seen += [
            info.model_dump_json(),
            receipt.model_dump_json(),
            p.consumer.asset(did).model_dump_json(),
        ]
        seen += [f.read_text(errors="replace") for f in out.rglob("*") if f.is_file()]
        seen.append(b"".join(p.consumer.logs(info.jobId)).decode(errors="replace"))
    assert len(checksums) == 1
    # the job did see its environment: the search below searched what it printed
    assert any('"DIDS"' in text for text in seen)
    # what the provider keeps of each job on its disk, its status rows included
    for f in (p.home / "jobs").rglob("*"):
        if f.is_file():
            seen.append(f.read_text(errors="replace"))
    secrets = [
        f"127.0.0.1:{origin.port}",
        "hidden-name",
        TOKEN,
        "publisher-token",
        s3_endpoint.removeprefix("http://"),
        s3_bucket,
        "hidden-key",
        "secret-prefix",
        KEYS.access_key_id,
        KEYS.secret_access_key,
    ]
    for text in seen:
        for secret in secrets:
            assert secret not in text


def test_a_url_source_is_fetched_once_for_many_jobs(provider: Running, origin: Origin) -> None:
    origin.files["d.csv"] = DATA
    did = publish(provider, "once", origin.url("/files/d.csv"))
    for _ in range(2):
        assert run(provider, did).status == JobStatus.FINISHED
    gets = [path for path, _ in origin.requests if path == "/files/d.csv"]
    assert gets == ["/files/d.csv"]  # at publish; the jobs used the cache


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ("changed", JobStatus.DATASET_CHANGED, "changed since it was published"),
        ("vanished", JobStatus.SOURCE_UNAVAILABLE, "no longer at its source"),
        ("failing", JobStatus.SOURCE_UNAVAILABLE, "answered with an error"),
        ("refused", JobStatus.SOURCE_REFUSED, "not one the operator allows"),
    ],
)
def test_a_source_that_goes_wrong_ends_the_job_with_its_own_status(
    provider: Running, origin: Origin, change: str, status: JobStatus, words: str
) -> None:
    origin.files["d.csv"] = DATA
    did = publish(provider, "d", origin.url("/files/d.csv"))
    cache = provider.home / "sources"
    before = sorted(p.name for p in cache.iterdir())
    if change == "changed":
        origin.files["d.csv"] = b"a,b\n6,6\n6,6\n"
    elif change == "vanished":
        del origin.files["d.csv"]
    elif change == "failing":
        origin.fail["d.csv"] = 503
    else:
        operator = provider.node.operator
        assert operator is not None
        operator.engine.inputs.remote.policy.grants.clear()  # type: ignore[attr-defined]
    info = run(provider, did)
    assert info.status == status, info.statusText
    assert words in info.statusText and "did not run" in info.statusText
    assert str(origin.port) not in info.statusText and "d.csv" not in info.statusText
    # nothing new in the cache: no part file, no other bytes
    assert sorted(p.name for p in cache.iterdir()) == before


def test_a_url_into_the_providers_network_is_refused_at_publish(
    provider: Running, origin: Origin
) -> None:
    origin.files["d.csv"] = DATA
    with running_origin("127.0.0.3") as inside:
        inside.files["d.csv"] = DATA
        for url in (
            inside.url("/files/d.csv"),  # loopback, not granted
            origin.url(f"/redirect?to={inside.url('/files/d.csv')}"),  # a redirect there
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
        ):
            with pytest.raises(BadRequest) as info:
                publish(provider, "inside", url)
            assert "127.0.0" not in str(info.value) and "169.254" not in str(info.value)
            assert "/etc" not in str(info.value)
        assert inside.requests == []


def test_the_status_shows_the_fetch_while_configuring(provider: Running, origin: Origin) -> None:
    """The status text of a configuring job says how far the fetch of its input has come."""
    origin.files["d.csv"] = DATA * 200_000
    did = publish(provider, "big", origin.url("/files/d.csv"))
    operator = provider.node.operator
    assert operator is not None
    engine = operator.engine
    texts: list[str] = []
    real = engine.store.advance_from

    def watching(job_id: str, expected: JobStatus, status: JobStatus, text: str = "") -> bool:
        texts.append(text)
        return real(job_id, expected, status, text)

    engine.store.advance_from = watching  # type: ignore[method-assign]
    for f in (provider.home / "sources").iterdir():  # fetched again by the job
        if f.is_file():
            f.unlink()
    assert run(provider, did).status == JobStatus.FINISHED
    fetching = [t for t in texts if "fetching" in t]
    mib = f"{len(DATA) * 200_000 / 2**20:.1f} MiB"
    assert fetching and fetching[-1].endswith(f": 100% ({mib} of {mib})")
    assert all(str(origin.port) not in t for t in fetching)


def test_output_checks_compare_with_a_url_datasets_cached_copy(
    provider: Running, origin: Origin
) -> None:
    """The disclosure checks read the inputs to compare outputs with: for a URL dataset,
    its cached copy. Unread inputs would hold every output, the harmless one too."""
    from atoll.models.ddo import ComputePolicy

    origin.files["people.csv"] = b"name,age\n" + b"".join(
        f"person{i},{20 + i % 50}\n".encode() for i in range(200)
    )
    meta = Metadata(name="people", type="dataset", tags=["test"])
    policy = ComputePolicy(allowRawAlgorithm=True)
    did = provider.publisher.publish(meta, [origin.url("/files/people.csv")], policy, price=10).id
    count = "open('/data/outputs/n.txt', 'w').write('rows: 200\\n')\n"
    copy = (
        "import json, os, shutil\n"
        "did = json.loads(os.environ['DIDS'])[0]\n"
        "shutil.copy('/data/inputs/' + did + '/0', '/data/outputs/copy.csv')\n"
    )
    ended = {}
    for name, code in (("count", count), ("copy", copy)):
        agreement = provider.consumer.order(did)
        job = provider.consumer.start(did, rawcode=code, agreement_id=agreement)
        ended[name] = provider.consumer.wait(job.jobId, timeout=90)
    assert ended["count"].status == JobStatus.FINISHED, ended["count"].statusText
    assert ended["copy"].status == JobStatus.AWAITING_REVIEW, ended["copy"].statusText


@pytest.mark.parametrize(
    ("change", "words"),
    [("stalling", "stalled"), ("endless", "larger than the operator allows")],
)
def test_a_source_that_stalls_or_never_ends_ends_the_job_over_its_limits(
    tmp_path: Path, origin: Origin, change: str, words: str
) -> None:
    require_sandbox()
    settings = {
        "source_hosts": (f"http://127.0.0.1:{origin.port}",),
        "source_stall_seconds": 1.0,
        "source_max_mb": 1,
    }
    origin.files["d.csv"] = DATA
    with running_provider(tmp_path / "home", **settings) as p:  # type: ignore[arg-type]
        did = publish(p, "d", origin.url("/files/d.csv"))
        cache = p.home / "sources"
        before = sorted(f.name for f in cache.iterdir())
        getattr(origin, change).add("d.csv")
        info = run(p, did)
        assert info.status == JobStatus.SOURCE_LIMIT_EXCEEDED, info.statusText
        assert words in info.statusText and str(origin.port) not in info.statusText
        assert sorted(f.name for f in cache.iterdir()) == before


def test_a_name_that_now_leads_to_loopback_is_refused_at_fetch(
    tmp_path: Path, origin: Origin
) -> None:
    """Published while the operator listed the address; fetched after it no longer does."""
    require_sandbox()
    import ipaddress

    settings = {
        "source_hosts": (f"http://data.test:{origin.port}",),
        "source_private_networks": ("127.0.0.1/32",),
    }
    origin.files["d.csv"] = DATA
    with running_provider(tmp_path / "home", **settings) as p:  # type: ignore[arg-type]
        operator = p.node.operator
        assert operator is not None
        sides = [p.node.context.publishing.remote, operator.engine.inputs.remote]  # type: ignore[attr-defined]
        for remote in sides:
            remote.policy.resolver = lambda host, port: [ipaddress.ip_address("127.0.0.1")]
        did = publish(p, "d", f"http://data.test:{origin.port}/files/d.csv")
        operator.engine.inputs.remote.policy.private.clear()  # type: ignore[attr-defined]
        info = run(p, did)
        assert info.status == JobStatus.SOURCE_REFUSED, info.statusText
        assert "a loopback address" in info.statusText and "data.test" not in info.statusText


def test_an_algorithm_is_not_published_from_a_url(provider: Running, origin: Origin) -> None:
    origin.files["algo.py"] = b"print('hi')\n"
    meta = Metadata(name="algo", type="algorithm", algorithm={"language": "python"})
    with pytest.raises(BadRequest, match="algorithm's code is a file on this host"):
        provider.publisher.publish(meta, [origin.url("/files/algo.py")])
    assert origin.requests == []
