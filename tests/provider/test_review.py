"""Outputs checked before they leave: what a job writes or prints reaches its consumer only
when the checks clear it or its reviewers approve it (real provider, real sandbox jobs); and
the consumer's view of a review, read from the store until nothing in it can move."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from atoll.catalog.store import AssetStore
from atoll.disclosure import Candidate, CheckReport, FileReport
from atoll.engine.jobstore import JobStore
from atoll.errors import Conflict, Forbidden, NotFound
from atoll.models.ddo import ComputePolicy
from atoll.models.job import JobInfo, ResultFile, Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.output_policy import OutputChecks, OutputPolicy
from atoll.models.status import JobStatus
from atoll.operator.registry import WorkflowRegistry
from atoll.provider.review import OutputReview
from atoll.provider.review_store import HELD, REJECTED, RELEASED, Checked, FileState, ReviewStore
from atoll.sdk.verify import check_releases, check_signature
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

CITIES = ["north", "south", "east"]


def people(n: int = 60) -> str:
    rng = random.Random(7)
    rows = ["person_id,name,city,age,income"]
    for i in range(n):
        rows.append(
            f"{100000 + i},Person{i:03d}Zq,{CITIES[i % 3]},{rng.randint(20, 80)},"
            f"{rng.randint(20000, 90000)}"
        )
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path_factory.mktemp("review") / "home") as running:
        yield running


def dataset(p: Running, **output: object) -> str:
    policy = ComputePolicy(
        allowRawAlgorithm=True,
        outputPolicy=OutputPolicy.model_validate(
            {"checks": OutputChecks(identifiers=["person_id", "name"]).model_dump(), **output}
        ),
    )
    # one provider for the module: each dataset its own name, so its own DID
    return p.dataset(text=people(), name=uuid.uuid4().hex, policy=policy)


READ = "import csv, glob\nrows = list(csv.DictReader(open(glob.glob('/data/inputs/*/0')[0])))\n"
#: what a job prints to make its log long enough to be checked from its exit on
PROGRESS = "print('step 1 loss 0.25\\n' * 5000)\n"


def run(p: Running, did: str, code: str) -> JobInfo:
    info = p.consumer.start(did, rawcode=READ + code)
    return p.consumer.wait(info.jobId, timeout=60)


def held(info: JobInfo) -> dict[int, list[str]]:
    assert info.review is not None
    return {h.index: h.reasons for h in info.review.held}


def outputs(info: JobInfo) -> list[int]:
    return [r.index for r in info.results if r.type == "output"]


LEAKS = {
    "copy": "import shutil\n"
    "shutil.copy(glob.glob('/data/inputs/*/0')[0], '/data/outputs/out.csv')\n",
    "base64": "import base64\nopen('/data/outputs/out.txt', 'w').write("
    "base64.b64encode(open(glob.glob('/data/inputs/*/0')[0], 'rb').read()).decode())\n",
    "gzip": "import gzip\nopen('/data/outputs/out.txt', 'wb').write("
    "gzip.compress(open(glob.glob('/data/inputs/*/0')[0], 'rb').read()))\n",
    "names": "for r in rows[:5]:\n    open(f\"/data/outputs/{r['name']}.txt\", 'w').write('1')\n",
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_a_leaking_output_is_held_and_never_served(provider: Running, leak: str) -> None:
    did = dataset(provider)
    info = run(provider, did, LEAKS[leak])
    assert info.status == JobStatus.AWAITING_REVIEW, info.statusText
    found = held(info)
    assert outputs(info) and all(i in found and found[i] for i in outputs(info))
    for index in outputs(info):
        with pytest.raises(Forbidden, match="held for review"):
            provider.consumer.result(info.jobId, index)
    # what the consumer sees of a held file: index, size, reasons; never the job's name
    shown = info.model_dump_json()
    assert "Person0" not in shown and "out.csv" not in shown and "out.txt" not in shown
    receipt = provider.consumer.receipt(info.jobId)
    assert receipt.receipt.checks is not None
    assert not set(outputs(info)) & set(receipt.receipt.checks.released)
    assert "Person0" not in receipt.model_dump_json()
    assert check_signature(receipt) == []


def test_printing_rows_holds_the_log_before_and_after_the_end(provider: Running) -> None:
    did = dataset(provider)
    code = (
        "import time\nfor r in rows:\n    print(','.join(r.values()), flush=True)\ntime.sleep(2)\n"
    )
    info = provider.consumer.start(did, rawcode=READ + code)
    # not a line while it runs: the log is checked at the end
    with pytest.raises(Conflict, match="checked when the job ends"):
        b"".join(provider.consumer.logs(info.jobId))
    streamed = []
    with pytest.raises(Forbidden, match="held for review"):
        for chunk in provider.consumer.logs(info.jobId, follow=True):
            streamed.append(chunk)
    assert streamed == []
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.AWAITING_REVIEW
    logs = [h for h in info.review.held if h.kind == "log"] if info.review else []
    assert logs and all(h.reasons for h in logs)
    with pytest.raises(Forbidden):
        b"".join(provider.consumer.logs(info.jobId))


def test_aggregates_are_released_at_once(provider: Running, tmp_path: Path) -> None:
    did = dataset(provider)
    code = (
        "import collections, statistics\n"
        "groups = collections.defaultdict(list)\n"
        "for r in rows:\n    groups[r['city']].append(int(r['age']))\n"
        "with open('/data/outputs/ages.csv', 'w') as f:\n"
        "    f.write('city,count,mean_age\\n')\n"
        "    for city, ages in sorted(groups.items()):\n"
        "        f.write(f'{city},{len(ages)},{round(statistics.mean(ages))}\\n')\n"
        "print('done')\n"
    )
    info = run(provider, did, code)
    assert info.status == JobStatus.FINISHED, info.review
    assert info.review is not None and info.review.state == "released"
    assert provider.consumer.result(info.jobId, outputs(info)[0]).startswith(b"city,count")
    assert b"done" in b"".join(provider.consumer.logs(info.jobId))
    saved = provider.consumer.download_results(info, tmp_path / "out")
    assert any(p.name == "ages.csv" for p in saved)


def test_small_cells_are_held_with_a_reason_naming_them(provider: Running) -> None:
    did = dataset(provider)
    code = (
        "with open('/data/outputs/small.csv', 'w') as f:\n"
        "    f.write('city,count\\nnorth,20\\nsouth,3\\neast,1\\n')\n"
    )
    info = run(provider, did, code)
    reasons = held(info)[outputs(info)[0]]
    assert any("small" in r and "row" in r for r in reasons), reasons


def test_review_mode_holds_everything(provider: Running) -> None:
    did = dataset(provider, mode="review")
    info = run(provider, did, "open('/data/outputs/n.txt', 'w').write('60')\n")
    assert info.status == JobStatus.AWAITING_REVIEW
    assert info.review is not None and info.review.released == []


def test_off_is_refused_for_data_that_marks_identifiers(provider: Running) -> None:
    with pytest.raises(Forbidden, match="open data only"):
        dataset(provider, mode="off")


def hold_one(p: Running, **output: object) -> tuple[JobInfo, int]:
    did = dataset(p, **output)
    info = run(p, did, LEAKS["copy"])
    return info, outputs(info)[0]


def test_self_approval_is_refused(provider: Running) -> None:
    did = dataset(provider)
    info = provider.publisher.start(did, rawcode=READ + LEAKS["copy"])
    info = provider.publisher.wait(info.jobId, timeout=60)
    index = outputs(info)[0]
    assert provider.publisher.review_item(info.jobId, index)["state"] == "held"
    with pytest.raises(Forbidden, match="their own job"):
        provider.publisher.approve(info.jobId, index, "mine")


def test_an_approved_file_is_released_with_a_signed_record(provider: Running) -> None:
    info, index = hold_one(provider)
    queue = provider.publisher.review_queue()
    assert any(q["jobId"] == info.jobId and q["index"] == index for q in queue)
    item = provider.publisher.review_item(info.jobId, index)
    assert item["filename"] == "out.csv" and item["columns"]["shared"]
    with pytest.raises(NotFound):
        provider.other.review_item(info.jobId, index)  # not a reviewer of this dataset
    provider.publisher.approve(info.jobId, index, "synthetic test data")
    data = provider.consumer.result(info.jobId, index)
    assert data.startswith(b"person_id")
    receipt = provider.consumer.receipt(info.jobId)
    assert [r.release.index for r in receipt.releases] == [index]
    assert check_signature(receipt) == [] and check_releases(receipt) == []


def test_two_reviewers_one_approval_releases_nothing(provider: Running) -> None:
    info, index = hold_one(provider, reviewers=[provider.other.key.address], reviewersRequired=2)
    provider.publisher.approve(info.jobId, index, "fine")
    with pytest.raises(Forbidden, match="held"):
        provider.consumer.result(info.jobId, index)
    with pytest.raises(Conflict, match="already decided"):
        provider.publisher.approve(info.jobId, index, "again")
    provider.other.approve(info.jobId, index, "fine too")
    assert provider.consumer.result(info.jobId, index).startswith(b"person_id")


def test_a_file_changed_after_the_check_is_never_released(provider: Running) -> None:
    info, index = hold_one(provider)
    operator = provider.node.operator
    assert operator is not None
    path = operator.engine.local_result(info.jobId, index)
    assert path is not None
    path.write_bytes(b"city,count\nnorth,20\n")
    item = provider.publisher.approve(info.jobId, index, "looks fine")
    assert item["state"] == "changed"
    with pytest.raises(Forbidden, match="changed"):
        provider.consumer.result(info.jobId, index)


def test_a_rejected_file_is_never_downloadable(provider: Running) -> None:
    info, index = hold_one(provider)
    provider.publisher.reject(info.jobId, index, "a copy of the input")
    with pytest.raises(Forbidden, match="rejected"):
        provider.consumer.result(info.jobId, index)
    with pytest.raises(Conflict, match="not held"):
        provider.publisher.approve(info.jobId, index, "changed my mind")
    status = provider.consumer.status(info.jobId)
    assert status.review is not None and status.review.state == "reviewed"
    assert [h.state for h in status.review.held if h.index == index] == ["rejected"]


# -- the consumer's view of a review, on every store backend -------------------------------


class CountingStore(ReviewStore):
    """A review store that counts the reads a consumer's view makes."""

    def __init__(self, db: sa.Engine) -> None:
        super().__init__(db)
        self.reads = 0

    def checked(self, job_id: str) -> Checked | None:
        self.reads += 1
        return super().checked(job_id)

    def files(self, job_id: str) -> list[FileState]:
        self.reads += 1
        return super().files(job_id)


def recorded(db: sa.Engine, states: list[str]) -> tuple[OutputReview, CountingStore, JobInfo]:
    store = CountingStore(db)
    sha = "0" * 64
    report = CheckReport(
        files=[
            FileReport(index=i, kind="output", size=2, sha256=sha, verdict="pass", findings=[])
            for i in range(len(states))
        ]
    )
    checked = Checked("j1", OWNER.lower(), [], "auto", 1, report.digest(), report)
    files = [FileState("j1", i, "output", f"f{i}", 2, sha, s, None) for i, s in enumerate(states)]
    assert store.record(checked, files, {REVIEWER})
    assert not store.record(checked, files, {REVIEWER})  # once: a second record keeps the first
    registry = cast(WorkflowRegistry, None)  # a view reads the store only
    review = OutputReview(store, AssetStore(db), registry, Key.generate())
    jobs = JobStore(db)
    workflow = Workflow(
        owner=OWNER,
        inputs=[WorkflowInput(did="did:atoll:1", ddo={}, locations=[])],
        algorithm=WorkflowAlgorithm(rawcode="pass"),
    )
    jobs.create("j1", workflow)
    listed = [
        ResultFile(index=i, filename=f"f{i}", filesize=2, type="output", sha256=sha)
        for i in range(len(states))
    ]
    jobs.advance("j1", JobStatus.FINISHED, results=listed)
    info = jobs.info("j1")
    return review, store, info


OWNER = "0x" + "Ab" * 20
REVIEWER = "0x" + "Cd" * 20


def test_a_settled_review_is_read_from_the_store_once(db: sa.Engine) -> None:
    review, store, info = recorded(db, [RELEASED, REJECTED])
    first = review.consumer_view(info)
    reads = store.reads
    again = review.consumer_view(info)
    assert store.reads == reads  # nothing can move any more: served from memory
    assert again == first
    assert again.review is not None and again.review.state == "reviewed"
    assert [r.filename for r in again.results] == ["f0", ""]


def test_a_review_awaiting_a_decision_is_read_each_time(db: sa.Engine) -> None:
    review, store, info = recorded(db, [RELEASED, HELD])
    first = review.consumer_view(info)
    assert first.review is not None and first.review.state == "awaiting review"
    assert first.status == JobStatus.AWAITING_REVIEW
    assert store.move("j1", 1, RELEASED)
    now = review.consumer_view(info)
    assert now.review is not None and now.review.state == "released"
    assert [r.filename for r in now.results] == ["f0", "f1"]
    assert now.status == JobStatus.FINISHED


def test_settled_reviews_kept_in_memory_stay_under_their_byte_cap() -> None:
    from atoll.models.job import JobReview
    from atoll.provider import review as review_module

    out = OutputReview(
        cast(ReviewStore, None),
        cast(AssetStore, None),
        cast(WorkflowRegistry, None),
        Key.generate(),
    )
    for j in range(300):
        job_id = f"job-{j}"
        files = {
            i: FileState(job_id, i, "output", f"out-{i}.csv", 100, "ab" * 32, RELEASED, None)
            for i in range(50)
        }
        summary = JobReview(state="released", mode="auto", reportDigest="cd" * 32)
        out._settle_view(job_id, summary, files)
        assert out.settled_bytes() <= review_module.SETTLED_BYTES
    # fifty files a job: far fewer jobs than a count bound of 256 would keep (job 100 on)
    assert out._settled_view("job-299") is not None
    assert out._settled_view("job-100") is None


def test_a_job_s_inputs_are_parsed_for_its_checks_while_it_runs(provider: Running) -> None:
    """The dataset of a job that started is parsed for the job's checks while the job runs:
    once it has ended, its checks find it kept and parse nothing."""
    import time

    did = dataset(provider)
    review = provider.node.context.reviews()
    location = Path(review.assets.files(did)[0].location)
    assert not review.checker.kept(location)
    info = provider.consumer.start(did, rawcode="import time\ntime.sleep(3)\nprint('done')\n")
    deadline = time.monotonic() + 2.5
    while not review.checker.kept(location) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert review.checker.kept(location)
    assert provider.consumer.status(info.jobId).status != JobStatus.FINISHED
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.FINISHED


def test_a_closed_node_leaves_no_thread_preparing_checks(tmp_path: Path) -> None:
    """The thread that parses a job's inputs for its checks ends with its node: it held the
    node (every one a process ever ran) for as long as the process lived."""
    import threading

    def preparers() -> int:
        return sum(t.name == "atoll-prepare-checks" for t in threading.enumerate())

    before = preparers()
    with running_provider(tmp_path / "home") as p:
        info = run(p, dataset(p), "print('done')\n")
        assert info.status == JobStatus.FINISHED
        assert preparers() == before + 1
    assert preparers() == before


def test_a_job_s_files_are_checked_once_as_soon_as_they_are_kept(
    provider: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks begin when the engine has kept the files, before the job's end is heard,
    and its end takes that report rather than checking again."""
    import threading

    review = provider.node.context.reviews()
    made: list[str] = []
    check = review.checker.check

    def counted(*args: object, **kwargs: object) -> CheckReport:
        made.append(threading.current_thread().name)
        return check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(review.checker, "check", counted)
    did = dataset(provider)
    info = run(provider, did, "open('/data/outputs/n.txt', 'w').write(str(len(rows)))\n")
    assert info.status == JobStatus.FINISHED
    assert outputs(info) == [0] and info.review is not None and not info.review.held
    assert [name.split("_")[0] for name in made] == ["atoll-early-checks"]


def test_a_report_begun_for_other_bytes_is_not_used(
    provider: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report begun early for files other than those the job's end names (here: their
    digests told wrong) is not the job's: its end checks the files again."""
    import threading

    review = provider.node.context.reviews()
    made: list[str] = []
    check, soon = review.checker.check, review.check_soon

    def counted(*args: object, **kwargs: object) -> CheckReport:
        made.append(threading.current_thread().name)
        return check(*args, **kwargs)  # type: ignore[arg-type]

    def told_wrong(job_id: str, dids: list[str], results: list[ResultFile]) -> None:
        soon(job_id, dids, [r.model_copy(update={"sha256": "0" * 64}) for r in results])

    monkeypatch.setattr(review.checker, "check", counted)
    monkeypatch.setattr(provider.node.operator.engine, "on_published", told_wrong)  # type: ignore[union-attr]
    did = dataset(provider)
    info = run(provider, did, "open('/data/outputs/n.txt', 'w').write(str(len(rows)))\n")
    assert info.status == JobStatus.FINISHED
    assert outputs(info) == [0] and info.review is not None and not info.review.held
    # begun early (its log apart, checked again here as its digest was told wrong too), then
    # everything again at the end
    assert len(made) >= 2 and all(m.startswith("atoll-early-checks") for m in made[:-1])
    assert not made[-1].startswith("atoll-early-checks")


def test_a_job_s_log_is_checked_from_its_exit_and_its_files_after_they_are_kept(
    provider: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's log is sent to the checks the moment its sandbox has exited, before its
    outputs are kept; once they are, only they are checked, and the log's report is the
    one its end binds."""
    review = provider.node.context.reviews()
    engine = provider.node.operator.engine
    assert engine is not None
    events: list[str] = []
    begin, check, published = review.checker.begin, review.checker.check, engine.on_published

    def begun(candidates: list[Candidate], *args: object) -> object:
        events.append("begin " + ",".join(c.kind for c in candidates))
        return begin(candidates, *args)  # type: ignore[arg-type]

    def checked(candidates: list[Candidate], *args: object) -> CheckReport:
        events.append("check " + ",".join(c.kind for c in candidates))
        return check(candidates, *args)  # type: ignore[arg-type]

    def kept(job_id: str, dids: list[str], results: list[ResultFile]) -> None:
        events.append("kept")
        assert published is not None
        published(job_id, dids, results)

    monkeypatch.setattr(review.checker, "begin", begun)
    monkeypatch.setattr(review.checker, "check", checked)
    monkeypatch.setattr(engine, "on_published", kept)
    did = dataset(provider)
    info = run(
        provider, did, PROGRESS + "print(len(rows))\nopen('/data/outputs/n', 'w').write('6')\n"
    )
    assert info.status == JobStatus.FINISHED and info.review is not None
    assert not info.review.held
    assert events == ["begin log", "kept", "check output"]
    assert b"".join(provider.consumer.logs(info.jobId)).endswith(b"\n60\n")
    # the report its receipt binds names both files, as one check of both would
    receipt = provider.consumer.receipt(info.jobId).receipt
    assert receipt.checks is not None and sorted(receipt.checks.released) == [0, 1]
    files = review.store.files(info.jobId)
    assert sorted((f.index, f.kind) for f in files) == [(0, "output"), (1, "log")]


def test_a_short_log_is_checked_with_the_job_s_other_files(
    provider: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log too short to be worth a trip of its own to the checks is checked with the
    job's outputs, once they are kept."""
    review = provider.node.context.reviews()
    begun: list[str] = []
    kinds: list[str] = []
    begin, check = review.checker.begin, review.checker.check

    def begins(candidates: list[Candidate], *args: object) -> object:
        begun.append(",".join(c.kind for c in candidates))
        return begin(candidates, *args)  # type: ignore[arg-type]

    def checked(candidates: list[Candidate], *args: object) -> CheckReport:
        kinds.append(",".join(c.kind for c in candidates))
        return check(candidates, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(review.checker, "begin", begins)
    monkeypatch.setattr(review.checker, "check", checked)
    info = run(
        provider, dataset(provider), "print(len(rows))\nopen('/data/outputs/n', 'w').write('6')\n"
    )
    assert info.status == JobStatus.FINISHED
    assert begun == [] and kinds == ["output,log"]


@pytest.mark.parametrize("early", ["clean", "leaking"])
def test_a_log_report_made_for_other_bytes_is_never_used(
    provider: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, early: str
) -> None:
    """A report begun at the job's exit for a log whose bytes are not those kept (here: the
    checks are sent another file) is not the log's: the log kept is checked again, and held
    or released for what it holds, whatever the other report said."""
    engine = provider.node.operator.engine
    assert engine is not None
    exited = engine.on_exited
    other = tmp_path / "other.log"
    did = dataset(provider)
    rows = people().splitlines()[1:6]
    padding = "step 1 loss 0.25\n" * 5000  # long enough to be checked from the exit on
    other.write_text(padding + ("\n".join(rows) + "\n" if early == "leaking" else "done\n"))

    def told_other(job_id: str, dids: list[str], log_path: Path) -> None:
        assert exited is not None
        exited(job_id, dids, other)

    monkeypatch.setattr(engine, "on_exited", told_other)
    # the job's own log is the opposite of the file its early check is sent
    rows_printed = "for r in rows:\n    print(','.join(r.values()))\n"
    code = "print('done')\n" if early == "leaking" else rows_printed
    info = run(provider, did, code)
    assert info.review is not None
    logs = [h for h in info.review.held if h.kind == "log"]
    if early == "leaking":
        assert info.status == JobStatus.FINISHED and not logs
        assert b"".join(provider.consumer.logs(info.jobId)).strip() == b"done"
    else:
        assert info.status == JobStatus.AWAITING_REVIEW and logs and logs[0].reasons
        with pytest.raises(Forbidden):
            b"".join(provider.consumer.logs(info.jobId))


@pytest.mark.parametrize("changed", ["checks", "inputs"])
def test_a_log_check_begun_under_what_changed_since_is_not_used(
    provider: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changed: str
) -> None:
    """A job's log check begun with what its datasets were as it started (their policy's
    checks, their files) is not used when that changed before its end: the log is checked
    again, with what they are then."""
    import time

    from atoll.provider import review as review_module

    review = provider.node.context.reviews()
    check = review.checker.check
    kinds: list[str] = []

    def checked(candidates: list[Candidate], *args: object) -> CheckReport:
        kinds.append(",".join(c.kind for c in candidates))
        return check(candidates, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(review.checker, "check", checked)
    did = dataset(provider)
    code = "import time\ntime.sleep(1.5)\n" + PROGRESS
    code += "for r in rows[:5]:\n    print(','.join(r.values()))\n"
    info = provider.consumer.start(did, rawcode=READ + code)
    deadline = time.monotonic() + 10
    while (plan := review._plans.take(info.jobId)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert plan is not None
    # as if, since the job was prepared for, its dataset's policy had changed, or its file
    # (here: one that holds none of the rows the job prints)
    if changed == "checks":
        plan = plan._replace(policy=OutputPolicy(checks=OutputChecks(threshold=3)))
    else:
        other = tmp_path / "other.csv"
        other.write_text("a,b\n1,2\n")
        plan = plan._replace(paths=[other])
    review._plans.put(info.jobId, plan)
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.AWAITING_REVIEW, info.statusText
    assert info.review is not None and [h.kind for h in info.review.held] == ["log"]
    assert kinds[-1] == "log"  # checked again, alone, as it was kept
    assert review_module._Plan is type(plan)


def test_a_log_check_that_failed_in_the_checks_process_is_made_again(
    provider: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log check begun at the job's exit whose process died under it (here: a report
    that raises as that does) is no report: the log is checked again, with the rest."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    review = provider.node.context.reviews()

    def broken(*_args: object) -> Future[CheckReport]:
        died: Future[CheckReport] = Future()
        died.set_exception(BrokenProcessPool("the checks' process ended under the call"))
        return died

    monkeypatch.setattr(review.checker, "begin", broken)
    leak = PROGRESS + "for r in rows:\n    print(','.join(r.values()))\n"
    info = run(provider, dataset(provider), leak)
    assert info.status == JobStatus.AWAITING_REVIEW, info.statusText
    assert info.review is not None and [h.kind for h in info.review.held] == ["log"]
    clean = run(provider, dataset(provider), PROGRESS + "print('done')\n")
    assert clean.status == JobStatus.FINISHED, clean.statusText
    assert b"".join(provider.consumer.logs(clean.jobId)).endswith(b"done\n")
