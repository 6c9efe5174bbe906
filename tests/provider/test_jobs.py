"""Jobs end to end over HTTP with the real sandbox: Ocean's layout, results, logs, ownership."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from atoll import signing
from atoll.errors import BadRequest, Conflict, NotFound
from atoll.models.status import JobStatus
from tests.helpers import OPEN_DATA, Running, require_sandbox


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    require_sandbox()


OCEAN_ALGORITHM = """
import json, os
dids = json.loads(os.getenv("DIDS"))
out = {"dids": dids, "transformation": os.getenv("TRANSFORMATION_DID"),
       "paths": [os.getenv(v) for v in ("INPUTS", "OUTPUTS", "LOGS")]}
for did in dids:
    ddo = json.load(open(f"/data/ddos/{did}"))
    rows = open(f"/data/inputs/{did}/0").read().splitlines()
    out[did] = {"name": ddo["metadata"]["name"], "rows": len(rows) - 1}
out["custom"] = json.load(open("/data/inputs/algoCustomData.json"))
os.makedirs("/data/outputs/sub", exist_ok=True)
json.dump(out, open("/data/outputs/result.json", "w"))
open("/data/outputs/sub/note.txt", "w").write("nested")
open("/data/logs/extra.log", "w").write("own log")
print("done", len(dids))
"""


def test_ocean_style_algorithm_runs_unchanged(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path, name="sales", policy=OPEN_DATA)  # outputs unchecked
    info = provider.consumer.start(did, rawcode=OCEAN_ALGORITHM, parameters={"k": "v"})
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    names = [(r.index, r.filename, r.type) for r in info.results]
    assert names == [
        (0, "result.json", "output"),
        (1, "sub/note.txt", "output"),
        (2, "algorithm.log", "algorithmLog"),
        (3, "logs/extra.log", "algorithmLog"),
    ]
    result = json.loads(provider.consumer.result(info.jobId, 0))
    assert result["dids"] == [did]
    assert result[did] == {"name": "sales", "rows": 2}
    assert result["custom"] == {"k": "v"}
    assert result["paths"] == ["/data/inputs", "/data/outputs", "/data/logs"]
    log = provider.consumer.result(info.jobId, 2)
    assert log == b"done 1\n"
    for r in info.results:
        data = provider.consumer.result(info.jobId, r.index)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (r.filesize, r.sha256)
    saved = provider.consumer.download_results(info, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "note.txt").read_text() == "nested"
    assert len(saved) == 4


def test_failures_get_their_own_status(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    info = provider.consumer.start(did, rawcode="import sys; print('bad'); sys.exit(3)")
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.ALGORITHM_FAILED
    assert "exit code 3" in info.statusText
    assert provider.consumer.result(info.jobId, 0) == b"bad\n"


def test_symlink_in_outputs_is_not_published(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = (
        "import os\n"
        "os.symlink('/etc/hostname', '/data/outputs/link')\n"
        "os.symlink('/data/inputs', '/data/outputs/dirlink')\n"
        "open('/data/outputs/ok.txt', 'w').write('ok')\n"
    )
    info = provider.consumer.wait(provider.consumer.start(did, rawcode=code).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED
    assert [r.filename for r in info.results if r.type == "output"] == ["ok.txt"]
    assert "skipped 2 files (2 links or special files)" in info.statusText


def test_another_consumer_cannot_see_or_touch_my_job(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    mine = provider.consumer.start(did, rawcode="print('secret output')")
    mine = provider.consumer.wait(mine.jobId, timeout=60)
    other = provider.other
    for call in (
        lambda: other.status(mine.jobId),
        lambda: other.result(mine.jobId, 0),
        lambda: list(other.logs(mine.jobId)),
        lambda: other.stop(mine.jobId),
        lambda: other.delete(mine.jobId),
    ):
        with pytest.raises(NotFound, match="no job"):
            call()
    assert other.jobs() == []
    again = provider.consumer.status(mine.jobId)
    assert again.removed == 0 and again.results == mine.results


def test_result_index_checks(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    info = provider.consumer.wait(provider.consumer.start(did, rawcode="pass").jobId, timeout=60)
    with pytest.raises(NotFound, match="out of range"):
        provider.consumer.result(info.jobId, len(info.results))
    key = provider.consumer.key
    for bad in ("../../etc/passwd", "-1", "0/../1"):
        nonce = key.next_nonce()
        sig = key.sign(signing.message("result", key.address, info.jobId, bad, nonce))
        r = httpx.get(
            provider.url + "/api/services/computeResult",
            params={
                "consumerAddress": key.address,
                "nonce": nonce,
                "signature": sig,
                "jobId": info.jobId,
                "index": bad,
            },
        )
        assert r.status_code == 400, r.text
        assert "index" in r.json()["error"]


def test_stop_and_delete(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    info = provider.consumer.start(
        did, rawcode="import time\nprint('start', flush=True)\ntime.sleep(60)"
    )
    while info.status != JobStatus.RUNNING and not info.terminal:
        info = provider.consumer.status(info.jobId, wait=30, since=info.status)
    assert info.status == JobStatus.RUNNING
    with pytest.raises(Conflict, match="still running"):
        provider.consumer.delete(info.jobId)
    provider.consumer.stop(info.jobId)
    info = provider.consumer.wait(info.jobId, timeout=30)
    assert info.status == JobStatus.STOPPED
    with pytest.raises(Conflict, match="already ended"):
        provider.consumer.stop(info.jobId)
    gone = provider.consumer.delete(info.jobId)
    assert gone.removed == 1 and gone.results == []
    with pytest.raises(NotFound, match="removed"):
        provider.consumer.result(info.jobId, 0)
    assert not (provider.home / "jobs" / info.jobId).exists()


def test_live_logs_follow_until_the_end(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    code = (
        "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"
    )
    info = provider.consumer.start(did, rawcode=code)
    text = b"".join(provider.consumer.logs(info.jobId, follow=True))
    assert text == b"line 0\nline 1\nline 2\n"
    assert provider.consumer.status(info.jobId).terminal


def test_raw_code_size_is_capped(provider: Running, tmp_path: Path) -> None:
    did = provider.dataset(tmp_path)
    with pytest.raises(BadRequest):
        provider.consumer.start(did, rawcode="x" * ((1 << 20) + 1))


def test_job_cannot_reach_provider_secrets_or_other_data(provider: Running, tmp_path: Path) -> None:
    mine = provider.dataset(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    provider.dataset(other_dir, name="other")
    port = int(provider.url.rsplit(":", 1)[1])
    targets = [
        str(provider.home / "provider.key"),
        str(provider.home / "key"),
        str(provider.home / "atoll.db"),
        str(other_dir / "other-0.csv"),
    ]
    code = f"""
import json, os, socket
out = {{}}
for path in {targets!r}:
    try:
        open(path, "rb").read(1)
        out[path] = "READ"
    except OSError as exc:
        out[path] = type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    out["provider"] = "CONNECTED"
except OSError as exc:
    out["provider"] = type(exc).__name__
out["env"] = sorted(os.environ)
json.dump(out, open("/data/outputs/probe.json", "w"))
"""
    info = provider.consumer.wait(provider.consumer.start(mine, rawcode=code).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    probe = json.loads(provider.consumer.result(info.jobId, 0))
    for path in targets:
        assert probe[path] != "READ", path
    assert probe["provider"] != "CONNECTED"
    assert not [v for v in probe["env"] if v.startswith("ATOLL") or "KEY" in v or "DATABASE" in v]


def test_no_sandbox_no_job(tmp_path: Path) -> None:
    """Fail closed: when the sandbox cannot be made, the algorithm does not run, the status
    says why (naming no host path), and the consumer is not charged for it."""
    from atoll.chain.records import ConditionState
    from atoll.engine.sandbox import SandboxExecutor
    from tests.helpers import running_provider

    broken = SandboxExecutor(cgroup_name="atoll-broken", bwrap=str(tmp_path / "no-bwrap"))
    with running_provider(tmp_path / "home", executor=broken, settle_margin_seconds=0) as p:
        did = p.dataset(tmp_path, price=10)
        agreement = p.consumer.order(did)
        code = "open('/data/outputs/ran', 'w').write('should not')"
        info = p.consumer.wait(
            p.consumer.start(did, rawcode=code, agreement_id=agreement).jobId, timeout=60
        )
        assert info.status == JobStatus.SANDBOX_UNAVAILABLE
        assert "did not run" in info.statusText and str(tmp_path) not in info.statusText
        assert [r for r in info.results if r.type == "output"] == []
        # not delivered, and the provider's own failure: the agreement's job is given back
        # and the consumer refunded at once (the agreement may already be settled and closed)
        row = p.node.authorizer.ledger.get(agreement)
        assert row is None or row.used == 0
        p.node.keeper.poke()
        assert p.consumer.wallet.wait_settled(agreement).compute.state is ConditionState.ABORTED
