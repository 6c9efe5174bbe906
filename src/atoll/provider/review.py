"""The check stage between a job's run and what its consumer may read, and the release queue.

At a job's end every output and log is checked against the output policy of its datasets
(:mod:`atoll.disclosure`); what passes is released at once, the rest is held until its
reviewers decide. A consumer sees a held file as its index, size and the checks' reasons only;
a file is served only while its bytes are the ones that were checked.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import queue
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal, NamedTuple

import anyio

from atoll.catalog.publish import sha256_file
from atoll.catalog.store import AssetStore
from atoll.disclosure import Candidate, CheckReport, FileReport
from atoll.errors import AtollError, Conflict, Forbidden, NotFound
from atoll.lru import SizedLRU
from atoll.models.charges import served
from atoll.models.ddo import DDO
from atoll.models.job import HeldFile, JobInfo, JobReview, ResultFile
from atoll.models.output_policy import OutputPolicy
from atoll.models.receipt import ReceiptChecks, Release, ReviewDecision, SignedRelease
from atoll.models.status import JobStatus
from atoll.operator.registry import WorkflowRegistry, gone_if_expired, is_local, local_result
from atoll.provider.checker import Checker
from atoll.provider.early_checks import ByJob, EarlyChecks
from atoll.provider.review_policy import policy_of, strictest
from atoll.provider.review_store import (
    CHANGED,
    HELD,
    REJECTED,
    RELEASED,
    Checked,
    FileState,
    ReviewStore,
)
from atoll.signing import Key
from atoll.storage.local_files import FileRefused, opened

log = logging.getLogger(__name__)

#: the job's stdout and stderr, as the engine names it among the results
ALGORITHM_LOG = "algorithm.log"
REVIEW_ONLY = "held for review: the dataset's output policy holds every file"
CHANGED_REASON = "its bytes changed after the check: it is never released"
#: the least a job's log holds to be checked from its exit on, apart from its other files:
#: a shorter one is checked with them (a trip to the checks' process takes longer)
EARLY_LOG = 64 * 1024
#: how much of a file is read for its columns
HEADER_BYTES = 64 * 1024
#: bytes of settled reviews (nothing held for a decision) kept in memory, the most
#: recently read
SETTLED_BYTES = 1 << 20
_CHUNK = 1 << 16
#: how long closing waits for the inputs being prepared to be done (a large dataset takes
#: seconds: its thread, a daemon, then ends with the process)
CLOSE_WAIT = 1.0


def kind_of(entry: ResultFile) -> Literal["output", "log"]:
    """What the checks call a result: an output, or a log (the job's own or one it wrote)."""
    return "output" if entry.type == "output" else "log"


def first_state(mode: str, report: FileReport | None, entry: ResultFile) -> str:
    """A file's state once checked: released only if the policy lets it pass and the checks
    saw the bytes the results list names."""
    if report is None or report.sha256 != entry.sha256 or report.size != entry.filesize:
        return CHANGED if report is not None else HELD
    if mode == "off":
        return RELEASED
    if mode == "review" or report.verdict != "pass":
        return HELD
    return RELEASED


def reasons(mode: str, report: FileReport | None, state: str) -> list[str]:
    """Why a file is not released, in words that name only positions, counts and limits."""
    if state == CHANGED:
        return [CHANGED_REASON]
    found = [f"{f.check}: {f.detail}" for f in report.findings] if report is not None else []
    if not found and mode == "review":
        found = [REVIEW_ONLY]
    return found or ["held for review"]


def columns_of(data: bytes) -> list[str] | None:
    """The header of a CSV or TSV file, or None when it does not look like one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first = text.splitlines()[0] if text else ""
    if not first:
        return None
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    if delimiter not in first:
        return None
    row = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    return [c.strip() for c in row]


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(HEADER_BYTES)
    except OSError:
        return b""


def _published_head(location: str) -> bytes:
    """The start of a publisher's file, reached as every read of one is: never through a
    link."""
    try:
        with opened(location) as f:
            return f.head(HEADER_BYTES)
    except (OSError, FileRefused):
        return b""


class _Plan(NamedTuple):
    """What a job's checks read, made as the job was prepared for: its datasets, their
    policy, and where their files are."""

    ddos: list[DDO]
    policy: OutputPolicy
    paths: list[Path]


class _Report(NamedTuple):
    """A job's check report, and the datasets and policy it was made under."""

    ddos: list[DDO]
    policy: OutputPolicy
    report: CheckReport


def _files_key(results: list[ResultFile]) -> Hashable:
    """The files a report is made for, by the bytes the engine kept."""
    return tuple((e.index, e.type, e.filename, e.sha256, e.filesize) for e in results)


def _is_algorithm_log(entry: ResultFile) -> bool:
    """Whether a result is the job's stdout and stderr, as the engine wrote it."""
    return entry.type == "algorithmLog" and entry.filename == ALGORITHM_LOG


def _strictest(ddos: list[DDO]) -> OutputPolicy:
    """The output policy of a job on these datasets: the strictest of theirs."""
    return strictest([policy_of(d) for d in ddos] or [OutputPolicy()])


class OutputReview:
    """Checks each ended job once, keeps the release queue, and says what a consumer may read."""

    def __init__(
        self, store: ReviewStore, assets: AssetStore, registry: WorkflowRegistry, key: Key
    ) -> None:
        self.store = store
        self.assets = assets
        self.registry = registry
        self.key = key
        #: where a dataset file's bytes are on this host (location, sha256): the file
        #: itself, or a URL or S3 file's cached copy (the node sets that)
        self.local_copy: Callable[[str, str], Path] = lambda location, _sha: Path(location)
        #: jobs that started, whose inputs are parsed for their checks while they run; None:
        #: the preparer ends
        self._to_prepare: queue.SimpleQueue[JobInfo | None] = queue.SimpleQueue()
        self._preparer: threading.Thread | None = None
        self._preparer_lock = threading.Lock()
        self._closed = False
        # a job's review once nothing in it awaits a decision: no file's state can move
        # again, so its watchers' many status reads need not read it from the store each
        self._settled: SizedLRU[str, tuple[JobReview, dict[int, FileState]]] = SizedLRU(
            SETTLED_BYTES
        )
        self._settled_lock = threading.Lock()
        #: the checks' own process, where the inputs are kept parsed
        self.checker = Checker()
        #: reports begun as soon as the engine kept a job's files (:meth:`check_soon`)
        self._early: EarlyChecks[_Report] = EarlyChecks()
        #: what the checks of a job that started read (its datasets, their policy, their
        #: files), made as it was prepared for, until its sandbox exits; then its log's
        #: check, under way in the checks' process (:meth:`log_soon`), until its end
        self._plans: ByJob[_Plan] = ByJob()
        self._log_checks: ByJob[tuple[_Plan, Future[CheckReport]]] = ByJob()

    def settled_bytes(self) -> int:
        """Bytes of settled reviews kept in memory (as :func:`atoll.lru.deep_size` weighs them)."""
        with self._settled_lock:
            return self._settled.size

    # -- the check stage ---------------------------------------------------------------------

    def _inputs(self, info: JobInfo) -> list[DDO]:
        return self._datasets(info.inputDID)

    def _datasets(self, dids: list[str]) -> list[DDO]:
        found = []
        for did in dids:
            with contextlib.suppress(NotFound):
                found.append(self.assets.get(did))
        return found

    def policy(self, info: JobInfo) -> OutputPolicy:
        """The job's output policy: the strictest of its datasets'."""
        return _strictest(self._inputs(info))

    def _input_paths(self, ddos: list[DDO]) -> list[Path]:
        """Where the bytes of these datasets' files are on this host."""
        return [
            self.local_copy(f.location, f.sha256) for d in ddos for f in self.assets.files(d.id)
        ]

    def prepare_soon(self, info: JobInfo) -> None:
        """Have the inputs of a job that started parsed for its checks while it runs, on a
        thread of the review's own, one job after another (jobs on one dataset find it kept
        after the first): its checks, once it ends, then find them ready."""
        with self._preparer_lock:
            if self._closed:
                return
            self._to_prepare.put(info)
            if self._preparer is None:
                self._preparer = threading.Thread(
                    target=self._prepare_all, name="atoll-prepare-checks", daemon=True
                )
                self._preparer.start()

    def _prepare_all(self) -> None:
        while True:
            info = self._to_prepare.get()
            if info is None:
                return
            try:
                self.prepare(info)
            except Exception as exc:
                # a head start only: the checks at the job's end read the inputs anyway (and
                # the error's kind only: its text may name where a dataset lies)
                log.debug(
                    "the inputs of job %s were not prepared: %s", info.jobId, type(exc).__name__
                )

    def prepare(self, info: JobInfo) -> int:
        """Parse and keep the job's inputs for its checks (blocking); how many were parsed.
        Nothing for a job whose outputs are not checked."""
        ddos = self._inputs(info)
        policy = _strictest(ddos)
        if policy.mode == "off":
            return 0
        paths = self._input_paths(ddos)
        self._plans.put(info.jobId, _Plan(ddos, policy, paths))
        return self.checker.prepare(paths, policy.checks)

    def log_soon(self, job_id: str, _dids: list[str], log_path: Path) -> None:
        """Begin checking a job's log the moment its sandbox has exited (the engine wrote
        the log, and it is whole then), while its outputs are measured and kept: the check
        of its files at their keeping takes the log's report (when the log kept is the one
        checked, under the policy then) and checks only the others. Sent to the checks'
        process from here, with what the job's preparing read, so that nothing waits for a
        thread; a short log, or one of a job not prepared (or whose outputs go unchecked),
        is checked with the rest."""
        plan = self._plans.take(job_id)
        if plan is None or not self.checks_here():
            return
        try:
            if log_path.stat().st_size < EARLY_LOG:
                return  # checked with the rest in one trip, for as long as that takes
        except OSError:
            return
        candidates = [Candidate(0, "log", ALGORITHM_LOG, log_path)]
        begun = self.checker.begin(candidates, plan.paths, plan.policy.checks)
        if begun is not None:
            self._log_checks.put(job_id, (plan, begun))

    def _early_log(
        self,
        begun: tuple[_Plan, Future[CheckReport]],
        entry: ResultFile,
        policy: OutputPolicy,
        inputs: list[Path],
    ) -> FileReport | None:
        """The report of the job's log begun as its sandbox exited (waited for), as the
        report of its ``entry`` among the results; None where it cannot be used: made
        under other checks than the datasets' ``policy`` now, against other ``inputs``,
        failed, or of other bytes than were kept (a log still written to after the exit)."""
        plan, future = begun
        if plan.policy.checks != policy.checks or plan.paths != inputs:
            future.cancel()
            return None
        try:
            (checked,) = future.result().files
        except Exception as exc:
            # checked again with the rest, where a failure holds it
            log.warning("an early check of a log failed (%s)", type(exc).__name__)
            return None
        if checked.sha256 != entry.sha256 or checked.size != entry.filesize:
            return None
        return checked.model_copy(update={"index": entry.index})

    def checks_here(self) -> bool:
        """Whether the result files lie on this host (the checks then run in one trip)."""
        return is_local(self.registry)

    async def check_ended(self, info: JobInfo, results: list[ResultFile]) -> ReceiptChecks | None:
        """:meth:`check` for a job whose results may lie on another host: fetched first."""
        if not served(info.status) or self.checks_here():
            return await anyio.to_thread.run_sync(self.check, info, results, None)
        with tempfile.TemporaryDirectory(prefix="atoll-check-") as scratch:
            paths = {}
            for entry in results:
                path = Path(scratch) / str(entry.index)
                _e, stream = await self.registry.result(info.jobId, entry.index)
                with path.open("wb") as fh:
                    async for chunk in stream:
                        fh.write(chunk)
                paths[entry.index] = path
            return await anyio.to_thread.run_sync(self.check, info, results, paths)

    def check_soon(self, job_id: str, dids: list[str], results: list[ResultFile]) -> None:
        """Begin checking a job's files the moment the engine has kept them, before its
        sandbox is released and its end recorded; its check at the end takes the report
        (when its files are still the ones it was made for)."""
        if self.checks_here():
            self._early.start(job_id, lambda: self._check_early(job_id, dids, results))

    def _check_early(
        self, job_id: str, dids: list[str], results: list[ResultFile]
    ) -> tuple[Hashable, _Report] | None:
        made = self._report(job_id, dids, results, None)
        # a dataset whose outputs go unchecked has nothing to begin early
        return None if made.policy.mode == "off" else (_files_key(results), made)

    def close(self) -> None:
        # the preparer ends after the job it prepares, if any (it held the node's review,
        # and with it the node, for as long as its process lived)
        with self._preparer_lock:
            self._closed = True
            preparer, self._preparer = self._preparer, None
            if preparer is not None:
                self._to_prepare.put(None)
        if preparer is not None:
            preparer.join(CLOSE_WAIT)
        self._early.close()
        self.checker.close()

    def _candidates(
        self, job_id: str, results: list[ResultFile], paths: dict[int, Path] | None
    ) -> list[Candidate]:
        def where(index: int) -> Path:
            if paths is not None:
                return paths[index]
            local = local_result(self.registry, job_id, index)
            assert local is not None
            return local

        return [Candidate(e.index, kind_of(e), e.filename, where(e.index)) for e in results]

    def check(
        self, info: JobInfo, results: list[ResultFile], paths: dict[int, Path] | None
    ) -> ReceiptChecks | None:
        """Check the ended job's files once (blocking) and say what its receipt binds; a job
        that serves nothing (the provider's failure) is not checked."""
        if not served(info.status):
            return None
        done = self.store.checked(info.jobId) or self._check(info, results, paths)
        by_index = {f.index: f for f in done.report.files}
        states = {e.index: first_state(done.mode, by_index.get(e.index), e) for e in results}
        return ReceiptChecks(
            mode=done.mode,
            reportDigest=done.digest,
            released=[i for i, s in states.items() if s == RELEASED],
            held=[i for i, s in states.items() if s != RELEASED],
        )

    def _check(
        self, info: JobInfo, results: list[ResultFile], paths: dict[int, Path] | None
    ) -> Checked:
        """Check the files and record the verdicts; returns the record the store keeps."""
        # the report begun as the engine kept these files, with the datasets and policy it
        # was made under (read a moment ago, as the job ended); else, made now
        made = self._early.take(info.jobId, _files_key(results)) if paths is None else None
        if made is None:
            made = self._report(info.jobId, info.inputDID, results, paths)
        ddos, policy, report = made
        by_index = {f.index: f for f in report.files}
        files = [
            FileState(
                job_id=info.jobId,
                index=e.index,
                kind=kind_of(e),
                filename=e.filename,
                size=e.filesize,
                sha256=e.sha256,
                state=first_state(policy.mode, by_index.get(e.index), e),
                release=None,
            )
            for e in results
        ]
        reviewers = {d.owner.lower() for d in ddos} | {r.lower() for r in policy.reviewers}
        checked = Checked(
            info.jobId,
            info.owner.lower(),
            [d.id for d in ddos],
            policy.mode,
            policy.reviewersRequired,
            report.digest(),
            report,
        )
        if not self.store.record(checked, files, reviewers):
            # another process checked the job first: its record is the one that counts
            first = self.store.checked(info.jobId)
            assert first is not None
            return first
        states = {f.index: f for f in files}
        if all(f.state != HELD for f in files):
            # settled from the start (nothing awaits a reviewer): the job's watchers, who
            # all ask the moment it ends, find its review here
            self._settle_view(info.jobId, self._summary(checked, states), states)
        return checked

    def _report(
        self,
        job_id: str,
        dids: list[str],
        results: list[ResultFile],
        paths: dict[int, Path] | None,
    ) -> _Report:
        """The job's files checked under its datasets' policy (all passed where it is
        ``off``), with the datasets and the policy."""
        ddos = self._datasets(dids)
        policy = _strictest(ddos)
        if policy.mode == "off":
            report = CheckReport(
                files=[
                    FileReport(
                        index=e.index,
                        kind=kind_of(e),
                        size=e.filesize,
                        sha256=e.sha256,
                        verdict="pass",
                        findings=[],
                    )
                    for e in results
                ]
            )
        else:
            candidates = self._candidates(job_id, results, paths)
            inputs = self._input_paths(ddos)
            begun = self._log_checks.take(job_id) if paths is None else None
            entry = next((e for e in results if _is_algorithm_log(e)), None)
            if begun is not None and entry is not None:
                # its log is checked from the job's exit on: the other files are checked
                # (after it, in the checks' process), then its report taken, or the log
                # checked again where it cannot be used. A file's report is the same checked
                # alone or beside others: each is read on its own
                others = [c for c in candidates if c.index != entry.index]
                report = self.checker.check(others, inputs, policy.checks)
                logged = self._early_log(begun, entry, policy, inputs)
                if logged is None:
                    alone = [c for c in candidates if c.index == entry.index]
                    logged = self.checker.check(alone, inputs, policy.checks).files[0]
                files = sorted([*report.files, logged], key=lambda f: f.index)
                report = CheckReport(files=files)
            else:
                report = self.checker.check(candidates, inputs, policy.checks)
        return _Report(ddos, policy, report)

    # -- what the consumer sees ---------------------------------------------------------------

    def consumer_view(self, info: JobInfo) -> JobInfo:
        """The job as its consumer may see it (blocking): held files by index, size and
        reasons only, and "awaiting review" while anything is held."""
        settled = self._settled_view(info.jobId)
        if settled is None:
            checked = self.store.checked(info.jobId)
            if checked is None:
                return info
            files = {f.index: f for f in self.store.files(info.jobId)}
            review = self._summary(checked, files)
            if review.state != "awaiting review":
                self._settle_view(info.jobId, review, files)
        else:
            review, files = settled
        update: dict[str, Any] = {
            "review": review,
            "results": redact(info.results, files),
        }
        if info.status == JobStatus.FINISHED and review.state == "awaiting review":
            update["status"] = int(JobStatus.AWAITING_REVIEW)
            update["statusText"] = JobStatus.AWAITING_REVIEW.text
        return info.model_copy(update=update)

    def _settled_view(self, job_id: str) -> tuple[JobReview, dict[int, FileState]] | None:
        with self._settled_lock:
            return self._settled.get(job_id)

    def _settle_view(self, job_id: str, review: JobReview, files: dict[int, FileState]) -> None:
        with self._settled_lock:
            self._settled.put(job_id, (review, files))

    def _summary(self, checked: Checked, files: dict[int, FileState]) -> JobReview:
        reports = {f.index: f for f in checked.report.files}
        pending = any(f.state == HELD for f in files.values())
        approvals = self.store.approvals(checked.job_id) if pending else {}
        held = [
            HeldFile(
                index=f.index,
                kind="output" if f.kind == "output" else "log",
                filesize=f.size,
                state=f.state,
                reasons=reasons(checked.mode, reports.get(f.index), f.state),
                approvals=approvals.get(f.index, 0),
                approvalsRequired=checked.reviewers_required,
            )
            for f in files.values()
            if f.state != RELEASED
        ]
        if pending:
            state = "awaiting review"
        elif held:
            state = "reviewed"
        else:
            state = "released"
        return JobReview(
            state=state,
            mode=checked.mode,
            reportDigest=checked.digest,
            released=[f.index for f in files.values() if f.state == RELEASED],
            held=held,
        )

    def redact_page(self, job_id: str, results: list[ResultFile]) -> list[ResultFile]:
        """A page of results as the consumer may see it (blocking)."""
        files = {f.index: f for f in self.store.files(job_id)}
        return redact(results, files)

    def releases(self, job_id: str) -> list[SignedRelease]:
        return [f.release for f in self.store.files(job_id) if f.release is not None]

    async def released(self, info: JobInfo, index: int) -> FileState:
        """The file, if its consumer may read it now; otherwise why not."""
        state = await anyio.to_thread.run_sync(self.store.file, info.jobId, index)
        if state is None:
            checked = await anyio.to_thread.run_sync(self.store.checked, info.jobId)
            if checked is None:
                raise Forbidden(f"the outputs of job {info.jobId} were not checked: none is served")
            raise NotFound(f"result index {index} is out of range")
        if state.state == HELD:
            raise Forbidden(f"result {index} of job {info.jobId} is held for review")
        if state.state == REJECTED:
            raise Forbidden(f"result {index} of job {info.jobId} was rejected by a reviewer")
        if state.state == CHANGED:
            raise Forbidden(f"result {index} of job {info.jobId} changed after it was checked")
        return state

    def log_index(self, info: JobInfo) -> int:
        """Which of the checked job's results is its stdout and stderr (blocking)."""
        for f in self.store.files(info.jobId):
            if f.kind == "log" and f.filename == ALGORITHM_LOG:
                return f.index
        raise NotFound(f"job {info.jobId} left no log")

    async def stream(
        self, job_id: str, state: FileState
    ) -> tuple[ResultFile, AsyncIterator[bytes]]:
        """The file's bytes, only while they are the ones that were checked: hashed before
        the first byte is sent (on this host) and as they go (the stream is cut on a
        mismatch)."""
        local = local_result(self.registry, job_id, state.index)
        if local is not None:
            try:
                digest = await anyio.to_thread.run_sync(sha256_file, local)
            except OSError:
                raise NotFound("the result file is missing") from None
            if digest != state.sha256:
                raise Forbidden(f"result {state.index} changed after it was checked")
        entry, stream = await self.registry.result(job_id, state.index)

        async def checked() -> AsyncIterator[bytes]:
            digest = hashlib.sha256()
            async for chunk in stream:
                digest.update(chunk)
                yield chunk
            if digest.hexdigest() != state.sha256:
                raise AtollError(f"result {state.index} changed after it was checked")

        return entry, checked()

    # -- the release queue ------------------------------------------------------------------

    async def reviewing(self, reviewer: str, job_id: str) -> Checked:
        checked = await anyio.to_thread.run_sync(self.store.checked, job_id)
        allowed = checked is not None and await anyio.to_thread.run_sync(
            self.store.is_reviewer, job_id, reviewer
        )
        if checked is None or not allowed:
            # another reviewer's job is reported as unknown, so that job ids cannot be probed
            raise NotFound(f"no job {job_id} for this reviewer")
        return checked

    def queue(self, reviewer: str, offset: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """The held files ``reviewer`` may decide on (blocking), a page of them."""
        out = []
        checks: dict[str, Checked | None] = {}
        approvals: dict[str, dict[int, int]] = {}
        for f in self.store.held_for(reviewer, limit, offset):
            if f.job_id not in checks:
                checks[f.job_id] = self.store.checked(f.job_id)
                approvals[f.job_id] = self.store.approvals(f.job_id)
            checked = checks[f.job_id]
            if checked is None:
                continue
            report = next((r for r in checked.report.files if r.index == f.index), None)
            out.append(
                {
                    "jobId": f.job_id,
                    "index": f.index,
                    "kind": f.kind,
                    "filename": f.filename,
                    "filesize": f.size,
                    "consumer": checked.owner,
                    "ownJob": checked.owner == reviewer.lower(),
                    "reasons": reasons(checked.mode, report, f.state),
                    "approvals": approvals[f.job_id].get(f.index, 0),
                    "approvalsRequired": checked.reviewers_required,
                }
            )
        return out

    async def item(self, reviewer: str, job_id: str, index: int) -> dict[str, Any]:
        """Everything a reviewer needs to decide on one file: the checks' report, its state,
        the decisions so far, and its columns against the inputs' columns."""
        checked = await self.reviewing(reviewer, job_id)
        state = await anyio.to_thread.run_sync(self.store.file, job_id, index)
        if state is None:
            raise NotFound(f"job {job_id} has no result {index}")
        report = next((r for r in checked.report.files if r.index == index), None)
        decisions = await anyio.to_thread.run_sync(self.store.decisions, job_id, index)
        head = await self._head(job_id, index)
        return {
            "jobId": job_id,
            "index": index,
            "kind": state.kind,
            "filename": state.filename,
            "filesize": state.size,
            "sha256": state.sha256,
            "state": state.state,
            "consumer": checked.owner,
            "mode": checked.mode,
            "reportDigest": checked.digest,
            "report": report.model_dump(mode="json") if report is not None else None,
            "reasons": reasons(checked.mode, report, state.state),
            "approvalsRequired": checked.reviewers_required,
            "decisions": [d.model_dump(mode="json") for d in decisions],
            "columns": await anyio.to_thread.run_sync(self._columns, job_id, head),
        }

    async def _head(self, job_id: str, index: int) -> bytes:
        local = local_result(self.registry, job_id, index)
        if local is not None:
            return await anyio.to_thread.run_sync(_head, local)
        _entry, stream = await self.registry.result(job_id, index)
        kept = bytearray()
        async for chunk in stream:
            kept += chunk
            if len(kept) >= HEADER_BYTES:
                break
        return bytes(kept[:HEADER_BYTES])

    def _columns(self, job_id: str, head: bytes) -> dict[str, Any] | None:
        """The file's columns beside the inputs' columns: which it shares with them (a copied
        column is the first thing a reviewer looks for) and which it adds."""
        mine = columns_of(head)
        if mine is None:
            return None
        checked = self.store.checked(job_id)
        inputs: dict[str, list[str]] = {}
        for did in checked.inputs if checked is not None else []:
            try:
                files = self.assets.files(did)
            except NotFound:
                continue
            for f in files:
                cols = columns_of(_published_head(str(self.local_copy(f.location, f.sha256))))
                if cols is not None:
                    inputs[f"{did}/{f.index}"] = cols
        known = {c.lower() for cols in inputs.values() for c in cols}
        return {
            "output": mine,
            "inputs": inputs,
            "shared": [c for c in mine if c.lower() in known],
            "added": [c for c in mine if c.lower() not in known],
        }

    async def file(
        self, reviewer: str, job_id: str, index: int
    ) -> tuple[FileState, AsyncIterator[bytes]]:
        """A held file's bytes, for its reviewers."""
        await self.reviewing(reviewer, job_id)
        gone_if_expired(await self.registry.status(job_id))
        state = await anyio.to_thread.run_sync(self.store.file, job_id, index)
        if state is None:
            raise NotFound(f"job {job_id} has no result {index}")
        _entry, stream = await self.stream(job_id, state)
        return state, stream

    async def decide(
        self, reviewer: str, job_id: str, index: int, decision: ReviewDecision, receipt_sha: str
    ) -> dict[str, Any]:
        """Record a reviewer's decision; release the file once enough distinct reviewers
        approved it and its bytes are still the ones that were checked."""
        checked = await self.reviewing(reviewer, job_id)
        if reviewer.lower() == checked.owner:
            raise Forbidden("no one reviews the outputs of their own job")
        state = await anyio.to_thread.run_sync(self.store.file, job_id, index)
        if state is None:
            raise NotFound(f"job {job_id} has no result {index}")
        if state.state != HELD:
            raise Conflict(f"result {index} of job {job_id} is {state.state}, not held")
        await anyio.to_thread.run_sync(self.store.decide, job_id, index, decision)
        if decision.decision == "reject":
            await anyio.to_thread.run_sync(self.store.move, job_id, index, REJECTED)
        else:
            approvals = await anyio.to_thread.run_sync(self.store.approvals, job_id)
            if approvals.get(index, 0) >= checked.reviewers_required:
                await self._release(checked, state, receipt_sha)
        return await self.item(reviewer, job_id, index)

    async def _release(self, checked: Checked, state: FileState, receipt_sha: str) -> None:
        report = next((r for r in checked.report.files if r.index == state.index), None)
        digest = await self._hash(state)
        if report is None or digest != state.sha256 or digest != report.sha256:
            await anyio.to_thread.run_sync(self.store.move, state.job_id, state.index, CHANGED)
            return
        decisions = await anyio.to_thread.run_sync(self.store.decisions, state.job_id, state.index)
        release = SignedRelease.sign(
            Release(
                jobId=state.job_id,
                receiptSha256=receipt_sha,
                reportDigest=checked.digest,
                index=state.index,
                filename=state.filename,
                filesize=state.size,
                sha256=state.sha256,
                decisions=decisions,
            ),
            self.key,
        )
        await anyio.to_thread.run_sync(
            self.store.move, state.job_id, state.index, RELEASED, release
        )

    async def _hash(self, state: FileState) -> str:
        local = local_result(self.registry, state.job_id, state.index)
        try:
            if local is not None:
                return await anyio.to_thread.run_sync(sha256_file, local)
            digest = hashlib.sha256()
            _entry, stream = await self.registry.result(state.job_id, state.index)
            async for chunk in stream:
                digest.update(chunk)
            return digest.hexdigest()
        except (OSError, AtollError):
            return ""


def redact(results: list[ResultFile], files: dict[int, FileState]) -> list[ResultFile]:
    """Results as the consumer sees them: a file not released keeps its index, size and type,
    never the name the job gave it."""
    out = []
    for r in results:
        f = files.get(r.index)
        if f is not None and f.state == RELEASED:
            out.append(r)
        else:
            out.append(r.model_copy(update={"filename": ""}))
    return out
