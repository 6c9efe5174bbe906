"""Jobs run as an unprivileged host uid of their own: what the host sees of a job's processes,
what such a uid can read, the process-count rlimit, jobs apart from each other, the uid pool,
and the devices a job may be given."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import stat
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.engine.executor import Mount, SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor, gpu_devices, readable_by
from atoll.engine.sandbox.bwrap import HostSystem, bwrap_argv, launcher_script, setpriv_argv
from atoll.engine.sandbox.cgroups import max_pids
from atoll.engine.sandbox.ids import UidPool, check_range, kill_processes_of, range_conflicts

from .conftest import SMALL, Jobs, LogBuffer, host_processes_with, host_status
from .test_sandbox import _spec


@pytest.fixture
def jobs(any_jobs: Jobs) -> Jobs:
    """The jobs here run with the host's runtime, then with an image's."""
    return any_jobs


# -- what the host sees ---------------------------------------------------------------------


def _wait_for(buf: LogBuffer, text: bytes) -> None:
    buf.watch = text
    assert buf.seen.wait(30) or text in buf.data, buf.data[-2000:]


def _ids(pid: int) -> tuple[set[int], set[int], str]:
    status = host_status(pid)
    return (
        {int(x) for x in status["Uid"].split()},
        {int(x) for x in status["Gid"].split()},
        status["Groups"].strip(),
    )


def test_every_process_of_a_job_has_an_unprivileged_host_uid(
    jobs: Jobs, sandbox: SandboxExecutor
) -> None:
    spec = jobs.spec(
        """
        import time
        if os.fork() == 0:
            time.sleep(60)
        report(uid=os.getuid(), gid=os.getgid(), euid=os.geteuid())
        print("up", flush=True)
        time.sleep(60)
        """
    )
    execution, buf = jobs.start(spec)
    try:
        _wait_for(buf, b"up")
        pids = host_processes_with(str(spec.args[1]))
        # bubblewrap's monitor and reaper, the job and its child
        assert len(pids) == 4
        ids = [_ids(pid) for pid in pids]
        uids = set().union(*(u for u, _, _ in ids))
        gids = set().union(*(g for _, g, _ in ids))
        assert len(uids) == 1, uids
        [uid] = uids
        assert sandbox.uid_range is not None
        first, last = sandbox.uid_range
        assert first <= uid <= last
        assert gids == {uid}
        assert {groups for _, _, groups in ids} == {""}
        for pid in pids:
            status = host_status(pid)
            assert int(status["CapEff"], 16) == 0, status
            assert int(status["CapPrm"], 16) == 0, status
    finally:
        execution.cancel()
        run = jobs.finish(spec, execution, buf)
    # inside, the job still sees the fixed unprivileged id
    assert run.report == {"uid": 65534, "gid": 65534, "euid": 65534}


def test_root_only_inputs_are_unreadable_and_readable_ones_are_read(
    jobs: Jobs, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # only root may enter: the job gets the files, not the path
    public = data / "public.csv"
    public.write_text("public rows")
    public.chmod(0o644)
    secret = data / "secret.csv"
    secret.write_text("SECRET ROWS")
    secret.chmod(0o600)
    closed = data / "closed"
    closed.mkdir(mode=0o700)
    (closed / "inside.csv").write_text("closed rows")
    run = jobs.run(
        """
        report(public=open("/data/inputs/p/0").read(),
               secret=attempt(open, "/data/inputs/s/0"),
               closed=attempt(os.listdir, "/data/inputs/c"),
               closed_file=attempt(open, "/data/inputs/c/inside.csv"))
        """,
        mounts=[
            Mount(public, "/data/inputs/p/0"),
            Mount(secret, "/data/inputs/s/0"),
            Mount(closed, "/data/inputs/c"),
        ],
    )
    assert run.report == {
        "public": "public rows",
        "secret": "EACCES",
        "closed": "EACCES",
        "closed_file": "EACCES",
    }
    assert b"SECRET ROWS" not in run.log
    # readable_by and the executor's readable() tell the engine so before it starts a job
    assert jobs.executor.readable(public)
    assert not jobs.executor.readable(secret)
    assert not jobs.executor.readable(closed)
    assert not jobs.executor.readable(data)


def test_process_count_rlimit_binds(jobs: Jobs) -> None:
    limits = dataclasses.replace(SMALL, pids=20)
    run = jobs.run(
        """
        import resource, time
        limit = resource.getrlimit(resource.RLIMIT_NPROC)
        # Lower than the cgroup's cap: a fork failing at this count is the rlimit's doing,
        # which never binds for host root.
        resource.setrlimit(resource.RLIMIT_NPROC, (6, limit[1]))
        children, failure = 0, None
        for _ in range(50):
            try:
                pid = os.fork()
            except OSError as e:
                failure = errno.errorcode[e.errno]
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
        report(limit=limit, children=children, failure=failure)
        """,
        limits=limits,
    )
    r = run.report
    assert r["limit"] == [max_pids(limits)] * 2
    assert r["failure"] == "EAGAIN"
    # stopped by the lowered rlimit (the job and bubblewrap's reaper count too), long before
    # the cgroup's cap
    assert r["children"] < 6
    jobs.assert_healthy()


def test_concurrent_jobs_cannot_see_or_signal_each_other(jobs: Jobs) -> None:
    first = jobs.spec("import time; print('up', flush=True); time.sleep(60)")
    first_execution, first_buf = jobs.start(first)
    second = None
    try:
        _wait_for(first_buf, b"up")
        [first_pid] = [
            p
            for p in host_processes_with(str(first.args[1]))
            if b"python" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]
        ]
        second = jobs.spec(
            f"""
            import time
            others = [p for p in os.listdir("/proc")
                      if p.isdigit() and p not in ("1", str(os.getpid()))]
            report(others=others, signal=attempt(os.kill, {first_pid}, 0),
                   marker_seen={str(first.args[1])!r}.encode() in b"".join(
                       open(f"/proc/{{p}}/cmdline", "rb").read()
                       for p in os.listdir("/proc") if p.isdigit()))
            print("up", flush=True)
            time.sleep(60)
            """
        )
        second_execution, second_buf = jobs.start(second)
        try:
            _wait_for(second_buf, b"up")
            [second_pid] = [
                p
                for p in host_processes_with(str(second.args[1]))
                if b"python" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]
            ]
            first_uid = _ids(first_pid)[0]
            second_uid = _ids(second_pid)[0]
            assert len(first_uid) == len(second_uid) == 1
            assert first_uid != second_uid
            # Even outside the namespaces, on the host, the second job's uid may not signal
            # the first job's processes.
            [uid] = second_uid
            probe = subprocess.run(
                [*setpriv_argv("setpriv", uid, uid), "/usr/bin/python3", "-c",
                 f"import os\ntry:\n os.kill({first_pid}, 0)\nexcept OSError as e:\n"
                 " print(e.errno)"],
                capture_output=True, text=True, timeout=30, cwd="/",
            )  # fmt: skip
            assert probe.stdout.strip() == "1"  # EPERM
        finally:
            second_execution.cancel()
            second_run = jobs.finish(second, second_execution, second_buf)
    finally:
        first_execution.cancel()
        jobs.finish(first, first_execution, first_buf)
    assert second_run.report == {"others": [], "signal": "ESRCH", "marker_seen": False}


def test_job_uids_are_handed_out_round_robin_and_given_back(
    jobs: Jobs, sandbox: SandboxExecutor
) -> None:
    seen = []
    for _ in range(3):
        spec = jobs.spec("pass")
        execution, buf = jobs.start(spec)
        claim = execution._claim
        assert claim is not None
        seen.append(claim.uid)
        jobs.finish(spec, execution, buf)
        # given back: another process could take it now
        assert sandbox._pool is not None
        fd = os.open(sandbox._pool.claims_dir / str(claim.uid), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert len(set(seen)) == 3


def test_shared_uid_mode(sandbox: SandboxExecutor, tmp_path: Path) -> None:
    shared = SandboxExecutor(
        cgroup_name=f"atoll-test-{os.getpid()}-shared", uid_range=None, tmp_bytes=1024**2
    )
    shared.check()
    jobs = Jobs(shared, tmp_path)
    try:
        spec = jobs.spec(
            """
            import resource, time
            report(nproc=resource.getrlimit(resource.RLIMIT_NPROC))
            print("up", flush=True)
            time.sleep(60)
            """
        )
        execution, buf = jobs.start(spec)
        try:
            _wait_for(buf, b"up")
            for pid in host_processes_with(str(spec.args[1])):
                assert _ids(pid)[:2] == ({65534}, {65534})
        finally:
            execution.cancel()
            run = jobs.finish(spec, execution, buf)
        # shared by every job, so not limited per job
        assert run.report["nproc"] != [max_pids(spec.limits)] * 2
    finally:
        shared.recover()
        shared.close()


# -- fail closed -----------------------------------------------------------------------------


def test_missing_setpriv_fails_closed() -> None:
    executor = SandboxExecutor(
        cgroup_name=f"atoll-test-{os.getpid()}-nosetpriv", setpriv="/nope/setpriv"
    )
    with pytest.raises(SandboxUnavailable) as info:
        executor.check()
    assert "setpriv" in str(info.value)
    assert "/nope" not in str(info.value)
    executor.close()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any uid can enter, for programs a job uid must run."""
    path = Path(tempfile.mkdtemp(prefix="atoll-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for entry in path.iterdir():
            entry.unlink()
        path.rmdir()


def test_without_unprivileged_user_namespaces_fails_closed(
    public_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A bubblewrap that behaves as on a kernel that refuses user namespaces to non-root.
    fake = public_dir / "bwrap"
    fake.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            if [ "$(id -u)" != 0 ]; then
                echo "bwrap: No permissions to creating new namespace" >&2
                exit 1
            fi
            exec bwrap "$@"
            """
        )
    )
    fake.chmod(0o755)
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}-nouserns", bwrap=str(fake))
    with caplog.at_level(logging.ERROR), pytest.raises(SandboxUnavailable) as info:
        executor.check()
    assert "unprivileged user namespaces" in str(info.value)
    assert str(public_dir) not in str(info.value)
    assert "No permissions to creating new namespace" in caplog.text
    executor.recover()
    executor.close()


def test_uid_range_that_overlaps_host_accounts_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "atoll.engine.sandbox.host_probe.range_conflicts", lambda first, last: ["a user"]
    )
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}-clash")
    with pytest.raises(SandboxUnavailable, match="overlap ids the host gives to a user"):
        executor.check()
    executor.close()


# -- devices ---------------------------------------------------------------------------------


def _null_like(path: Path) -> Path:
    null = os.stat("/dev/null").st_rdev
    os.mknod(path, 0o666 | stat.S_IFCHR, null)
    path.chmod(0o666)
    return path


def test_a_device_is_passed_in_and_only_to_the_job_that_asked(jobs: Jobs, tmp_path: Path) -> None:
    node = _null_like(tmp_path / "fake-gpu")
    absent = str(tmp_path / "absent-gpu")
    code = f"""
        import stat
        def write():
            with open({str(node)!r}, "w") as f:
                f.write("to the device")
        node = {str(node)!r}
        report(char=os.path.exists(node) and stat.S_ISCHR(os.stat(node).st_mode),
               write=attempt(write), absent=os.path.exists({absent!r}),
               dev=sorted(os.listdir("/dev")),
               mknod=attempt(os.mknod, "/tmp/own", 0o666 | stat.S_IFCHR, os.makedev(1, 3)))
        """
    with_device = jobs.run(code, devices=[str(node), absent])
    without = jobs.run(code)
    assert with_device.report["char"] is True
    assert with_device.report["write"] == "ok"
    assert with_device.report["absent"] is False
    assert without.report["char"] is False
    assert without.report["write"] == "ENOENT"
    # the node is all the job got: its /dev is the same as without it, and it cannot make
    # device nodes of its own
    assert with_device.report["dev"] == without.report["dev"]
    assert with_device.report["mknod"] == without.report["mknod"] == "EPERM"


def test_a_device_under_dev_lands_in_the_jobs_dev(jobs: Jobs) -> None:
    node = _null_like(Path("/dev") / f"atoll-test-{uuid.uuid4().hex[:12]}")
    try:
        run = jobs.run(
            f"""
            import stat
            with open({str(node)!r}, "w") as f:
                f.write("x")
            report(char=stat.S_ISCHR(os.stat({str(node)!r}).st_mode),
                   new=attempt(lambda: open("/dev/another", "w")))
            """,
            devices=[str(node)],
        )
    finally:
        node.unlink()
    assert run.report == {"char": True, "new": "EROFS"}


def test_only_character_devices_are_accepted(jobs: Jobs, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    os.mknod(disk, 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    plain = tmp_path / "plain"
    plain.write_text("not a device")
    for path, relative in ((disk, False), (plain, False), (Path("dev/x"), True)):
        spec = jobs.spec("open('/data/outputs/ran', 'w')", devices=[str(path)])
        with pytest.raises(SandboxUnavailable) as info:
            jobs.executor.start(spec, lambda _: None)
        assert str(tmp_path) not in str(info.value)
        assert ("invalid path" in str(info.value)) is relative
        assert not os.path.ismount(spec.outputs_dir)


def test_gpu_devices(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    assert gpu_devices(1, dev=dev) == ()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        _null_like(dev / name)
    (dev / "nvidia2").write_text("not a device")
    control = (str(dev / "nvidiactl"), str(dev / "nvidia-uvm"))
    assert gpu_devices(0, dev=dev) == ()
    assert gpu_devices(1, dev=dev) == (str(dev / "nvidia0"), *control)
    assert gpu_devices(2, dev=dev) == (str(dev / "nvidia0"), str(dev / "nvidia1"), *control)
    # asked for more than there are: the ones present, for the caller to count
    assert gpu_devices(4, dev=dev)[:2] == (str(dev / "nvidia0"), str(dev / "nvidia1"))
    assert len(gpu_devices(4, dev=dev)) == 4
    if not os.path.exists("/dev/nvidia0"):
        assert gpu_devices(1) == ()


def test_devices_on_the_command_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path, devices=("/dev/nvidia0", "/dev/nvidiactl"))
    argv = bwrap_argv("bwrap", spec, shell="/bin/sh", host=HostSystem())
    pairs = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--dev-bind-try"]
    assert pairs == [("/dev/nvidia0", "/dev/nvidia0"), ("/dev/nvidiactl", "/dev/nvidiactl")]
    assert "--dev-bind" not in argv
    # bound after the job's /dev is made and before it is made read-only
    assert argv.index("--dev") < argv.index("--dev-bind-try")
    assert argv.index("--dev-bind-try") < argv.index("--remount-ro")


# -- pure parts ------------------------------------------------------------------------------


def test_staged_sources_on_the_command_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    argv = bwrap_argv(
        "bwrap", spec, shell="/bin/sh", host=HostSystem(), source=lambda p: f"/stage{p}"
    )
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a.endswith("bind")]
    assert ("/stage/srv/in", "/data/inputs/x/0") in binds
    assert (f"/stage{tmp_path}/out", "/data/outputs") in binds
    # the host's base system is bound from where it is
    assert ("/usr", "/usr") in binds


def test_setpriv_argv() -> None:
    argv = setpriv_argv("/usr/bin/setpriv", 200_001, 200_001)
    assert argv[0] == "/usr/bin/setpriv"
    assert argv[argv.index("--reuid") + 1] == "200001"
    assert argv[argv.index("--regid") + 1] == "200001"
    for flag in ("--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"):
        assert flag in argv
    assert argv[-1] == "--"


def test_launcher_sets_the_process_count_rlimit(sandbox: SandboxExecutor, tmp_path: Path) -> None:
    flag = sandbox._nproc_flag
    assert flag in {"-u", "-p"}
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    limits = dataclasses.replace(SMALL, pids=9)
    assert "ulimit" not in launcher_script([procs], limits).split("ulimit -f")[1]
    script = launcher_script([procs], limits, nproc_flag=flag)
    out = subprocess.run(
        ["/bin/sh", "-c", script, "atoll-sandbox", "/bin/cat", "/proc/self/limits"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    [line] = [x for x in out.splitlines() if x.startswith("Max processes")]
    assert line.split()[2:4] == [str(9 + 2)] * 2


def test_uid_ranges() -> None:
    check_range(200_000, 200_999)
    for first, last in ((0, 10), (10, 5), (65_000, 66_000), (1, 2**31)):
        with pytest.raises(ValueError):
            check_range(first, last)
    with pytest.raises(ValueError):
        SandboxExecutor(uid_range=(0, 100))


def test_range_conflicts(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:200500:200500::/:/x\n")
    (tmp_path / "group").write_text("root:x:0:\n")
    (tmp_path / "subuid").write_text("alice:100000:65536\nbob:165536:65536\n")
    assert range_conflicts(200_000, 200_999, tmp_path) == ["a user", "subordinate uids"]
    assert range_conflicts(300_000, 300_999, tmp_path) == []
    assert range_conflicts(231_072, 231_100, tmp_path) == []
    assert range_conflicts(231_071, 231_100, tmp_path) == ["subordinate uids"]


def test_uid_pool(tmp_path: Path) -> None:
    pool = UidPool(300_000, 300_002, tmp_path / "claims")
    pool.prepare()
    other = UidPool(300_000, 300_002, tmp_path / "claims")  # another executor of the host
    a, b = pool.claim(), other.claim()
    assert a.uid != b.uid
    c = pool.claim()
    assert len({a.uid, b.uid, c.uid}) == 3
    with pytest.raises(SandboxUnavailable, match="in use"):
        pool.claim()
    # nothing is orphaned while its holders live
    assert other.orphans() == []
    b.release()
    b.release()
    # a uid nobody holds and no process has is no orphan either
    assert pool.orphans() == []
    # one that a process still has (its engine died) is
    left = subprocess.Popen(["sleep", "30"], user=b.uid, group=b.uid)
    try:
        [orphan] = pool.orphans()
        assert orphan.uid == b.uid
        assert kill_processes_of([orphan.uid])
        orphan.release()
    finally:
        left.kill()
        left.wait()
    assert pool.claim().uid == b.uid


def test_looking_for_orphans_leaves_the_free_uids_to_other_engines(tmp_path: Path) -> None:
    """An engine that starts looks for leftovers of a dead one; meanwhile another engine of
    the host must still get uids for its jobs (it once got none: the whole range was held)."""
    looking = UidPool(300_000, 300_009, tmp_path / "claims")
    looking.prepare()
    other = UidPool(300_000, 300_009, tmp_path / "claims")
    held = looking.orphans()
    try:
        assert held == []
        assert other.claim().uid in range(300_000, 300_010)
    finally:
        for claim in held:
            claim.release()


def test_readable_by(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    os.chown(f, 300_000, 300_001)
    f.chmod(0o400)
    assert readable_by(f, 300_000, 1)  # owner
    assert not readable_by(f, 300_002, 300_001)  # group: no bits
    f.chmod(0o040)
    assert not readable_by(f, 300_000, 300_001)  # the owner class is the one that counts
    assert readable_by(f, 300_002, 300_001)
    f.chmod(0o004)
    assert readable_by(f, 300_002, 300_002)
    assert readable_by(f, 0, 0)
    assert not readable_by(tmp_path / "missing", 300_002, 300_002)

    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "g").write_text("y")
    (d / "link").symlink_to("/root")
    for path, mode in ((d, 0o755), (d / "sub", 0o755), (d / "sub" / "g", 0o644)):
        path.chmod(mode)
    assert readable_by(d, 300_002, 300_002)
    (d / "sub" / "g").chmod(0o600)
    assert not readable_by(d, 300_002, 300_002)
    (d / "sub" / "g").chmod(0o644)
    (d / "sub").chmod(0o744)  # listable but not enterable
    assert not readable_by(d, 300_002, 300_002)
