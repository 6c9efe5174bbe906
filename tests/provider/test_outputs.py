"""What a job leaves in its outputs, end to end over HTTP with the real sandbox: it takes no more
than the cap on the provider's disk however it is shaped, every status, list and receipt stays
small, and no name makes an answer fail."""

from __future__ import annotations

import hashlib
import statistics
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll import signing
from atoll.models.job import RESULTS_PAGE, STATUS_RESULTS, STATUS_TEXT_MAX, JobInfo
from atoll.models.status import JobStatus
from tests.helpers import Running, require_sandbox, running_provider

MIB = 1024**2
OUTPUT_MB = 8
MAX_FILES = 1000
#: a status, a list of one job, or a receipt of a job at the cap, is never bigger than this
STATUS_BOUND = 64 * 1024
RECEIPT_BOUND = MAX_FILES * (255 + 250) + 16 * 1024


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    require_sandbox()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    with running_provider(
        tmp_path / "home", job_output_mb=OUTPUT_MB, max_output_files=MAX_FILES
    ) as running:
        yield running


def on_disk(provider: Running, job_id: str) -> int:
    """What the job holds on the provider's disk, in allocated blocks."""
    root = provider.home / "jobs" / job_id
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*") if not p.is_symlink())


#: what each route's signature covers, after the address
SIGNED_PARTS = {"status": ("jobId",), "result": ("jobId", "index"), "results": ("jobId", "offset")}


def signed_get(provider: Running, route: str, path: str, **params: object) -> httpx.Response:
    key = provider.consumer.key
    nonce = key.next_nonce()
    parts = [params.get(name, 0) for name in SIGNED_PARTS[route]]
    sig = key.sign(signing.message(route, key.address, *parts, nonce))
    query = {"consumerAddress": key.address, "nonce": nonce, "signature": sig, **params}
    return httpx.get(provider.url + "/api/services" + path, params=query, timeout=60)


def raw_status(provider: Running, job_id: str) -> bytes:
    r = signed_get(provider, "status", "/compute", jobId=job_id)
    assert r.status_code == 200, r.text
    return r.content


def run(provider: Running, did: str, code: str) -> JobInfo:
    info = provider.consumer.start(did, rawcode=code)
    return provider.consumer.wait(info.jobId, timeout=120)


def test_sparse_files_take_no_more_than_the_cap(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = f"""
for i in range(6):
    with open(f"/data/outputs/sparse{{i}}", "wb") as f:
        f.truncate({OUTPUT_MB - 1} * 1024 * 1024)
        f.write(b"x")
print("made them")
"""
    info = run(provider, did, code)
    # 6 files of 7 MiB apparent size fit a tmpfs of 8 MiB; dense on disk they would be 42
    assert info.status == JobStatus.DISK_QUOTA_EXCEEDED, info.statusText
    assert "outputs not published" in info.statusText
    assert [r.filename for r in info.results] == ["algorithm.log"]
    assert provider.consumer.result(info.jobId, 0) == b"made them\n"
    assert on_disk(provider, info.jobId) <= OUTPUT_MB * MIB


def test_hard_links_take_no_more_than_the_cap(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = """
import os
with open("/data/outputs/big", "wb") as f:
    f.write(os.urandom(6 * 1024 * 1024))
for i in range(200):
    os.link("/data/outputs/big", f"/data/outputs/link{i}")
open("/data/outputs/ok.txt", "w").write("kept")
"""
    info = run(provider, did, code)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert [r.filename for r in info.results if r.type == "output"] == ["ok.txt"]
    assert "201 hard links" in info.statusText
    assert on_disk(provider, info.jobId) <= OUTPUT_MB * MIB


def test_names_never_make_an_answer_fail(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = """
import os
for raw in (b"bad\\xff.txt", b"lone\\xc2.txt", b"c0\\xc0\\xaf.txt"):
    with open(b"/data/outputs/" + raw, "wb") as f:
        f.write(b"hidden")
open("/data/outputs/日本語.txt", "w").write("kept")
open("/data/outputs/naïve \\"quoted\\".txt", "w").write("latin")
"""
    info = run(provider, did, code)
    assert info.status == JobStatus.FINISHED, info.statusText
    outputs = [r for r in info.results if r.type == "output"]
    assert sorted(r.filename for r in outputs) == sorted(["日本語.txt", 'naïve "quoted".txt'])
    assert "3 names that are not UTF-8" in info.statusText
    assert [j.jobId for j in provider.consumer.jobs()] == [info.jobId]
    for r in outputs:
        resp = signed_get(provider, "result", "/computeResult", jobId=info.jobId, index=r.index)
        assert resp.status_code == 200, resp.text
        disposition = resp.headers["content-disposition"]
        exact = disposition.split("filename*=UTF-8''", 1)[1]
        assert urllib.parse.unquote(exact) == r.filename
        assert hashlib.sha256(resp.content).hexdigest() == r.sha256
    saved = provider.consumer.download_results(info, tmp_path / "out")
    assert (tmp_path / "out" / "日本語.txt").read_text() == "kept"
    assert len(saved) == len(info.results)


def test_a_tree_deeper_than_path_max_is_left_out_not_a_failure(
    provider: Running, tmp_path: Path
) -> None:
    did = provider.dataset(tmp_path)
    code = """
import os
print("the answer is 42", flush=True)
os.chdir("/data/outputs")
for _ in range(60):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
open("deep.txt", "w").write("deep")
open("/data/outputs/ok.txt", "w").write("ok")
"""
    info = run(provider, did, code)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert [r.filename for r in info.results] == ["ok.txt", "algorithm.log"]
    assert "1 names longer than 255 bytes" in info.statusText


def test_special_files_are_counted_and_texts_stay_short(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = """
import os
for i in range(1500):
    os.mkfifo(f"/data/outputs/a-fifo-with-a-name-long-enough-to-matter-{i:05}")
"""
    info = run(provider, did, code)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert "skipped 1500 files (1500 links or special files)" in info.statusText
    assert "fifo" not in info.statusText
    assert len(info.statusText) <= STATUS_TEXT_MAX
    receipt = provider.consumer.receipt(info.jobId)
    assert receipt.receipt.statusText == info.statusText
    assert len(raw_status(provider, info.jobId)) < STATUS_BOUND


def _poll_time(provider: Running, job_id: str) -> float:
    start = time.perf_counter()
    raw_status(provider, job_id)
    return time.perf_counter() - start


def test_a_flood_of_files_is_refused_and_polls_cost_what_others_do(tmp_path: Path) -> None:
    # room for 100,000 small files in the job's space: only the cap on files stops them
    with running_provider(
        tmp_path / "home", job_output_mb=512, job_memory_mb=1024, max_output_files=MAX_FILES
    ) as provider:
        did = provider.dataset(tmp_path)
        flood = run(
            provider,
            did,
            """
for i in range(100_000):
    with open(f"/data/outputs/f{i:06}", "wb") as f:
        f.write(b"1")
print("flooded")
""",
        )
        assert flood.status == JobStatus.DISK_QUOTA_EXCEEDED, flood.statusText
        assert f"more than {MAX_FILES} files" in flood.statusText
        assert [r.filename for r in flood.results] == ["algorithm.log"]
        assert on_disk(provider, flood.jobId) <= 512 * MIB
        assert (provider.home / "jobs" / flood.jobId / "results").is_dir()
        assert len(list((provider.home / "jobs" / flood.jobId / "results").iterdir())) == 1

        # a job at the cap: every file published, its status as small as any other's
        full = run(
            provider,
            did,
            f"""
for i in range({MAX_FILES}):
    open(f"/data/outputs/r{{i:04}}.txt", "w").write(str(i))
""",
        )
        assert full.status == JobStatus.FINISHED, full.statusText
        assert full.resultCount == MAX_FILES + 1
        assert len(full.results) == STATUS_RESULTS
        normal = run(provider, did, "open('/data/outputs/one.txt', 'w').write('1')")
        assert normal.status == JobStatus.FINISHED

        sizes = {j.jobId: len(raw_status(provider, j.jobId)) for j in (flood, full, normal)}
        assert max(sizes.values()) < STATUS_BOUND
        listing = signed_get(provider, "status", "/compute", jobId="")
        assert listing.status_code == 200 and len(listing.content) < 3 * STATUS_BOUND
        for job in (flood, full, normal):
            receipt = provider.consumer.receipt(job.jobId)
            assert len(receipt.model_dump_json()) < RECEIPT_BOUND
        assert len(provider.consumer.receipt(full.jobId).receipt.results) == MAX_FILES + 1

        # polls interleaved, so that whatever else loads the machine loads both alike
        times: dict[str, list[float]] = {flood.jobId: [], full.jobId: [], normal.jobId: []}
        for _ in range(15):
            for job_id in times:
                times[job_id].append(_poll_time(provider, job_id))
        base = statistics.median(times[normal.jobId])
        for job_id in (flood.jobId, full.jobId):
            assert statistics.median(times[job_id]) < 4 * base, (times, base)


def test_results_are_paged_and_downloaded_whole(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    count = 150
    info = run(
        provider,
        did,
        f"""
for i in range({count}):
    open(f"/data/outputs/r{{i:03}}.txt", "w").write("x" * i)
""",
    )
    assert info.status == JobStatus.FINISHED, info.statusText
    assert (info.resultCount, len(info.results)) == (count + 1, STATUS_RESULTS)
    page = signed_get(
        provider, "results", "/computeResults", jobId=info.jobId, offset=100, limit=30
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert [r["index"] for r in body["results"]] == list(range(100, 130))
    assert body["resultCount"] == count + 1 and body["resultsSha256"] == info.resultsSha256
    too_big = signed_get(
        provider, "results", "/computeResults", jobId=info.jobId, limit=RESULTS_PAGE + 1
    )
    assert too_big.status_code == 400
    assert provider.other.jobs() == []
    every = provider.consumer.results(info)
    assert [r.index for r in every] == list(range(count + 1))
    listed = [r.model_dump(mode="json") for r in every]
    from atoll.canonical import canonical_sha256

    assert canonical_sha256(listed) == info.resultsSha256
    saved = provider.consumer.download_results(info, tmp_path / "out")
    assert len(saved) == count + 1
    assert (tmp_path / "out" / "r149.txt").read_text() == "x" * 149
    receipt = provider.consumer.receipt(info.jobId).receipt
    assert [r.sha256 for r in receipt.results] == [r.sha256 for r in every]
