"""Hostile jobs: each test tries one way out of the sandbox or one way to hurt the host, checks
that it is contained, and then checks that a normal job still runs."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atoll.engine.executor import ExitReason, Limits, Mount, SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor, cgroups, mounts
from atoll.engine.sandbox.cgroups import job_cgroup_name

from .conftest import SMALL, Jobs, host_processes_with, marked_mount_points

#: job uids of the executors that tests crash on purpose, apart from those of the others
CRASHED_UIDS = (201_000, 201_009)


@pytest.fixture
def jobs(any_jobs: Jobs) -> Jobs:
    """Every escape test here runs with the host's runtime, then again with an image's."""
    return any_jobs


# -- reading what is not the job's ------------------------------------------------------


def test_cannot_read_a_dataset_that_is_not_mounted(jobs: Jobs, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("my data")
    other = tmp_path / "other-dataset" / f"secret-rows-{uuid.uuid4().hex}.csv"
    other.parent.mkdir()
    other.write_text("SECRET-ROWS")
    run = jobs.run(
        f"""
        found = []
        for top in os.listdir("/"):
            if top in ("proc", "usr") or os.path.islink("/" + top):
                continue
            for dirpath, dirnames, filenames in os.walk("/" + top):
                found += [os.path.join(dirpath, f) for f in filenames if {other.name!r} in f]
        report(direct=attempt(open, {str(other)!r}),
               parent=attempt(os.listdir, {str(other.parent)!r}),
               found=found,
               mine=open("/data/inputs/mine/0").read())
        """,
        mounts=[Mount(mine, "/data/inputs/mine/0")],
    )
    assert run.report == {"direct": "ENOENT", "parent": "ENOENT", "found": [], "mine": "my data"}
    assert b"SECRET-ROWS" not in run.log
    jobs.assert_healthy()


def test_host_files_are_not_visible(jobs: Jobs, tmp_path: Path) -> None:
    host_tmp_marker = Path("/tmp") / f"atoll-host-marker-{uuid.uuid4().hex}"
    host_tmp_marker.write_text("host tmp")
    try:
        run = jobs.run(
            f"""
            report(passwd=attempt(open, "/etc/passwd"),
                   etc=sorted(os.listdir("/etc")),
                   root=attempt(os.listdir, "/root"),
                   home=attempt(os.listdir, "/home"),
                   var=attempt(os.listdir, "/var"),
                   sys=attempt(os.listdir, "/sys"),
                   test_dir=attempt(os.listdir, {str(tmp_path)!r}),
                   cwd=attempt(os.listdir, {os.getcwd()!r}),
                   tmp=os.listdir("/tmp"),
                   marker=attempt(open, {str(host_tmp_marker)!r}),
                   top=sorted(os.listdir("/")))
            """
        )
    finally:
        host_tmp_marker.unlink()
    r = run.report
    for key in ("sys", "test_dir", "marker"):
        assert r[key] == "ENOENT", key
    assert r["cwd"] in {"ENOENT", "ok"}  # ok only if the cwd is one of the sandbox's own dirs
    assert r["tmp"] == []
    if jobs.image is None:
        assert r["passwd"] == "ENOENT"
        assert r["etc"] == ["ld.so.cache"]
        for key in ("root", "home", "var"):
            assert r[key] == "ENOENT", key
        assert set(r["top"]) <= {"bin", "data", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                                 "proc", "sbin", "tmp", "usr"}  # fmt: skip
    else:
        # the image's tree and the sandbox's own directories, nothing of the host's
        image = jobs.image
        assert r["passwd"] == ("ok" if (image / "etc/passwd").is_file() else "ENOENT")
        assert r["etc"] == sorted(os.listdir(image / "etc"))
        for key in ("root", "home", "var"):
            assert r[key] == ("ok" if (image / key).is_dir() else "ENOENT"), key
        own = {"data", "dev", "proc", "run", "tmp"}
        assert set(r["top"]) == (set(os.listdir(image)) - {"sys"}) | own
    jobs.assert_healthy()


def test_proc_shows_only_the_sandbox(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOLL_SECRET", "proc-secret-value")
    me = os.getpid()
    run = jobs.run(
        f"""
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        def environ():
            return open("/proc/{me}/environ", "rb").read().decode(errors="replace")
        try:
            env = environ()
        except OSError:
            env = ""
        report(pids=pids, me=os.getpid(),
               init=open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode(),
               host_env_has_secret="proc-secret-value" in env,
               signal=attempt(os.kill, {me}, 0),
               sysrq=attempt(lambda: open("/proc/sysrq-trigger", "w").write("h")),
               hostname=open("/proc/sys/kernel/hostname").read().strip())
        """
    )
    r = run.report
    # bwrap's reaper (1), the job, and nothing of the host
    assert r["pids"] == [1, r["me"]]
    assert r["init"].endswith("bwrap")
    assert r["host_env_has_secret"] is False
    assert r["signal"] == "ESRCH"
    assert r["sysrq"] != "ok"
    assert r["hostname"] == "sandbox"
    jobs.assert_healthy()


def test_inputs_are_read_only(jobs: Jobs, tmp_path: Path) -> None:
    data_dir = tmp_path / "dataset"
    data_dir.mkdir()
    data = data_dir / "rows.csv"
    data.write_text("original")
    data.chmod(0o644)
    run = jobs.run(
        """
        f = "/data/inputs/ds/rows.csv"
        report(write=attempt(lambda: open(f, "w").write("evil")),
               append=attempt(lambda: open(f, "a").write("evil")),
               truncate=attempt(os.truncate, f, 0),
               unlink=attempt(os.unlink, f),
               rename=attempt(os.rename, f, "/data/inputs/ds/moved"),
               chmod=attempt(os.chmod, f, 0o777),
               utime=attempt(os.utime, f, (0, 0)),
               create=attempt(lambda: open("/data/inputs/ds/new", "w").write("x")),
               content=open(f).read())
        """,
        mounts=[Mount(data_dir, "/data/inputs/ds")],
    )
    r = run.report
    assert r.pop("content") == "original"
    assert all(v in {"EROFS", "EACCES", "EPERM"} for v in r.values()), r
    assert data.read_text() == "original"
    assert data.stat().st_mode & 0o777 == 0o644
    assert sorted(os.listdir(data_dir)) == ["rows.csv"]
    jobs.assert_healthy()


# -- network ---------------------------------------------------------------------------------


@pytest.fixture
def listeners() -> Iterator[tuple[int, str, list[str]]]:
    """A TCP server on all host addresses and an abstract unix socket, both recording any
    connection they accept."""
    accepted: list[str] = []
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", 0))
    tcp.listen(8)
    abstract_name = f"atoll-test-{uuid.uuid4().hex}"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0" + abstract_name)
    unix.listen(8)
    stop = threading.Event()

    def serve(sock: socket.socket, kind: str) -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(kind)
            conn.close()

    threads = [
        threading.Thread(target=serve, args=(tcp, "tcp"), daemon=True),
        threading.Thread(target=serve, args=(unix, "unix"), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        yield tcp.getsockname()[1], abstract_name, accepted
    finally:
        stop.set()
        for t in threads:
            t.join()
        tcp.close()
        unix.close()


def _host_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address: str = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_no_network(jobs: Jobs, listeners: tuple[int, str, list[str]]) -> None:
    port, abstract_name, accepted = listeners
    # the listener really works from the host
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    for _ in range(500):
        if accepted:
            break
        threading.Event().wait(0.01)
    assert accepted == ["tcp"]
    accepted.clear()
    host_ip = _host_address()
    run = jobs.run(
        f"""
        import socket
        def tcp(host, port, family=socket.AF_INET):
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect((host, port))
        def unix():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect("\\0" + {abstract_name!r})
        routes = open("/proc/net/route").read().splitlines()[1:]
        devices = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
        report(loopback=attempt(tcp, "127.0.0.1", {port}),
               host_ip=attempt(tcp, {host_ip!r}, {port}) if {host_ip!r} else "skipped",
               public=attempt(tcp, "1.1.1.1", 443),
               public6=attempt(tcp, "2606:4700:4700::1111", 443, socket.AF_INET6),
               dns=attempt(socket.getaddrinfo, "example.com", 443),
               unix=attempt(unix),
               routes=routes, devices=devices)
        """
    )
    r = run.report
    assert r["loopback"] == "ECONNREFUSED"
    assert r["host_ip"] in {"ENETUNREACH", "skipped"}
    assert r["public"] == "ENETUNREACH"
    assert r["public6"] in {"ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"}
    assert r["dns"] == "gaierror"
    assert r["unix"] == "ECONNREFUSED"
    assert r["routes"] == []
    assert r["devices"] == ["lo"]
    assert accepted == []
    jobs.assert_healthy()


# -- resource abuse ---------------------------------------------------------------------------


def test_fork_bomb_is_capped_by_pids_max(jobs: Jobs) -> None:
    limits = dataclasses.replace(SMALL, pids=12)
    run = jobs.run(
        """
        import time
        children, failure = 0, None
        for _ in range(500):
            try:
                pid = os.fork()
            except OSError as e:
                failure = errno.errorcode[e.errno]
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
        report(children=children, failure=failure)
        """,
        limits=limits,
    )
    assert run.result.reason is ExitReason.EXITED
    assert run.report["failure"] == "EAGAIN"
    assert run.report["children"] < limits.pids
    jobs.assert_healthy()


def test_endless_fork_bomb_is_killed(jobs: Jobs) -> None:
    # memory to spare, so that the pids limit is what holds the bomb (forked interpreters
    # copy pages as they run, and sixteen of them can outgrow a small memory limit first)
    limits = dataclasses.replace(SMALL, pids=16, wall_seconds=2.0, memory_bytes=512 * 1024**2)
    run = jobs.run(
        """
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        limits=limits,
    )
    assert run.result.reason is ExitReason.TIMEOUT
    jobs.assert_healthy()


def test_memory_bomb_is_oom_killed(jobs: Jobs) -> None:
    run = jobs.run(
        """
        hog = []
        while True:
            hog.append(bytearray(1024 * 1024))
        """
    )
    assert run.result.reason is ExitReason.OUT_OF_MEMORY
    assert "memory" in run.result.detail
    jobs.assert_healthy()


def test_endless_loop_hits_the_wall_clock_limit(jobs: Jobs) -> None:
    run = jobs.run("while True: pass", limits=dataclasses.replace(SMALL, wall_seconds=2.0))
    assert run.result.reason is ExitReason.TIMEOUT
    assert run.result.exit_code is None
    jobs.assert_healthy()


def test_endless_loop_hits_the_cpu_time_limit(jobs: Jobs) -> None:
    limits = dataclasses.replace(SMALL, cpu_seconds=1, wall_seconds=30.0)
    run = jobs.run("while True: pass", limits=limits)
    assert run.result.reason is ExitReason.CPU_TIME
    jobs.assert_healthy()


def test_filling_outputs_stops_at_the_cap(jobs: Jobs) -> None:
    cap = SMALL.output_bytes
    run = jobs.run(
        f"""
        def fill():
            with open("/data/outputs/huge.bin", "wb") as f:
                for _ in range({4 * cap // 65536}):
                    f.write(b"x" * 65536)
        report(fill=attempt(fill))
        """
    )
    assert run.report == {"fill": "ENOSPC"}
    assert run.result.reason is ExitReason.OUTPUT_LIMIT
    assert len(run.outputs["huge.bin"]) <= cap
    jobs.assert_healthy()


def test_filling_outputs_with_empty_files_stops_at_the_inode_cap(jobs: Jobs) -> None:
    run = jobs.run(
        """
        made, failure = 0, None
        for i in range(100_000):
            try:
                open(f"/data/outputs/f{i}", "w").close()
            except OSError as e:
                failure = errno.errorcode[e.errno]
                break
            made += 1
        report(made=made, failure=failure)
        """
    )
    assert run.report["failure"] == "ENOSPC"
    assert run.report["made"] < 100_000
    assert run.result.reason is ExitReason.OUTPUT_LIMIT
    jobs.assert_healthy()


def test_filling_the_logs_directory_stops_at_the_cap(jobs: Jobs) -> None:
    cap = SMALL.log_bytes
    spec = jobs.spec(
        f"""
        def fill():
            with open("/data/logs/huge.log", "wb") as f:
                for _ in range({4 * cap // 65536}):
                    f.write(b"x" * 65536)
        report(fill=attempt(fill))
        """
    )
    execution, buf = jobs.start(spec)
    result = execution.wait()
    try:
        assert (spec.logs_dir / "huge.log").stat().st_size <= cap
    finally:
        execution.release()
    assert "ENOSPC" in buf.data.decode()
    assert result.reason is ExitReason.OUTPUT_LIMIT
    assert list(spec.logs_dir.iterdir()) == []  # nothing reached the host's disk
    jobs.assert_healthy()


def test_stdout_flood_is_truncated(jobs: Jobs) -> None:
    limits = dataclasses.replace(SMALL, log_bytes=64 * 1024)
    run = jobs.run(
        """
        chunk = "y" * 65536
        for _ in range(128):
            sys.stdout.write(chunk)
            sys.stderr.write(chunk)
        sys.stdout.flush()
        """,
        limits=limits,
    )
    # the job was not blocked by a full pipe: it finished on its own
    assert run.result.reason is ExitReason.EXITED
    assert run.result.exit_code == 0
    body, _, note = run.log.partition(b"\n[atoll] log truncated")
    assert len(body) == limits.log_bytes
    assert set(body) == {ord("y")}
    assert note.count(b"\n") == 1
    assert "truncated" in run.result.detail
    jobs.assert_healthy()


def test_links_out_of_the_outputs(jobs: Jobs, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("input rows")
    run = jobs.run(
        """
        report(symlink_etc=attempt(os.symlink, "/etc/passwd", "/data/outputs/passwd"),
               symlink_input=attempt(os.symlink, "/data/inputs/ds/0", "/data/outputs/rows"),
               hardlink_input=attempt(os.link, "/data/inputs/ds/0", "/data/outputs/hard"),
               hardlink_tmp=attempt(os.link, "/data/transformations/algorithm",
                                    "/data/outputs/algo"))
        """,
        mounts=[Mount(data, "/data/inputs/ds/0")],
    )
    r = run.report
    assert r["symlink_etc"] == "ok" and r["symlink_input"] == "ok"
    assert r["hardlink_input"] in {"EXDEV", "EPERM"}
    assert r["hardlink_tmp"] in {"EXDEV", "EPERM"}
    # symlinks stay symlinks (the publisher skips them); nothing was copied in
    assert run.links == {"passwd": "/etc/passwd", "rows": "/data/inputs/ds/0"}
    assert run.outputs == {}
    assert data.read_text() == "input rows"
    jobs.assert_healthy()


def test_daemon_does_not_outlive_the_job(jobs: Jobs) -> None:
    run = jobs.run(
        """
        import time
        tag = sys.argv[1] + "-daemon"
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv("/usr/bin/python3",
                         ["python3", "-c", "import time; time.sleep(300)", tag])
            os._exit(0)
        def running():
            for p in os.listdir("/proc"):
                try:
                    if p.isdigit() and tag.encode() in open(f"/proc/{p}/cmdline", "rb").read():
                        return int(p)
                except OSError:
                    pass
        for _ in range(500):
            if running():
                break
            time.sleep(0.01)
        report(daemon=running())
        """
    )
    assert run.result.reason is ExitReason.EXITED
    assert run.report["daemon"]  # it was running inside when the job ended
    assert host_processes_with(run.marker + "-daemon") == []
    jobs.assert_healthy()


def test_cancel_stops_a_running_job(jobs: Jobs) -> None:
    spec = jobs.spec(
        """
        import time
        print("started", flush=True)
        time.sleep(120)
        """,
        limits=dataclasses.replace(SMALL, wall_seconds=60.0),
    )
    execution, buf = jobs.start(spec)
    buf.watch = b"started"
    # the log arrives while the job runs, not when it ends
    assert buf.seen.wait(30) or b"started" in buf.data
    assert host_processes_with(str(spec.args[1]))
    execution.cancel()
    execution.cancel()  # idempotent
    run = jobs.finish(spec, execution, buf)
    assert run.result.reason is ExitReason.STOPPED
    assert run.result.exit_code is None
    jobs.assert_healthy()


# -- fail closed ------------------------------------------------------------------------------


def _assert_no_host_path(message: str, *paths: str) -> None:
    for p in paths:
        assert p not in message


def test_missing_bwrap_fails_closed(tmp_path: Path) -> None:
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}-nobw", bwrap="/nope/bwrap")
    with pytest.raises(SandboxUnavailable) as info:
        executor.check()
    _assert_no_host_path(str(info.value), "/nope")
    jobs = Jobs(executor, tmp_path)
    spec = jobs.spec("open('/data/outputs/ran', 'w')")
    with pytest.raises(SandboxUnavailable):
        executor.start(spec, lambda _: None)
    assert not spec.outputs_dir.exists() or list(spec.outputs_dir.iterdir()) == []
    if os.geteuid() == 0:
        assert "bubblewrap" in str(info.value)


def test_missing_interpreter_fails_closed(jobs: Jobs, tmp_path: Path) -> None:
    spec = jobs.spec("pass", runtime=jobs.runtime(Path("/opt/none/bin/python3")))
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, lambda _: None)
    assert "interpreter" in str(info.value)
    _assert_no_host_path(str(info.value), "/opt/none", str(tmp_path))
    assert not os.path.ismount(spec.outputs_dir)
    jobs.assert_healthy()


def test_missing_input_fails_closed(jobs: Jobs, tmp_path: Path) -> None:
    spec = jobs.spec("pass", mounts=[Mount(tmp_path / "gone.csv", "/data/inputs/x/0")])
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, lambda _: None)
    _assert_no_host_path(str(info.value), str(tmp_path))


def _job_cgroup_dirs(executor: SandboxExecutor, job_id: str) -> list[Path]:
    name = job_cgroup_name(job_id)
    return [p / name for p in executor._cgroup_system().parent_dirs().values()]


def test_unwritable_cgroup_fails_closed(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = cgroups._write

    def refuse_pids(path: Path, value: str) -> None:
        if path.name == "pids.max":
            raise PermissionError(13, "Permission denied", str(path))
        real_write(path, value)

    monkeypatch.setattr(cgroups, "_write", refuse_pids)
    spec = jobs.spec("open('/data/outputs/ran', 'w')")
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, lambda _: None)
    assert "process-count" in str(info.value)
    _assert_no_host_path(str(info.value), "/sys")
    assert not any(d.exists() for d in _job_cgroup_dirs(jobs.executor, spec.job_id))
    assert not os.path.ismount(spec.outputs_dir)


def test_unmountable_output_space_fails_closed(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real_mount = mounts.mount_tmpfs

    def refuse_logs(source: str, target: Path, size: int, inodes: int, **kw: Any) -> None:
        calls.append(target)
        if target.name == "logs":
            raise PermissionError(1, "Operation not permitted", str(target))
        real_mount(source, target, size, inodes, **kw)

    monkeypatch.setattr(mounts, "mount_tmpfs", refuse_logs)
    spec = jobs.spec("open('/data/outputs/ran', 'w')")
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, lambda _: None)
    _assert_no_host_path(str(info.value), str(spec.logs_dir))
    assert calls == [spec.outputs_dir, spec.logs_dir]
    # what was set up before the failure is undone
    assert not os.path.ismount(spec.outputs_dir)
    assert not any(d.exists() for d in _job_cgroup_dirs(jobs.executor, spec.job_id))


# -- after a crash ------------------------------------------------------------------------


def test_recover_removes_leftover_jobs_cgroups_and_mounts(
    sandbox: SandboxExecutor, tmp_path: Path
) -> None:
    name = f"atoll-test-{os.getpid()}-crashed"
    # a range of its own: the other executors of the host keep theirs meanwhile
    uid_range = CRASHED_UIDS
    crashed = SandboxExecutor(cgroup_name=name, tmp_bytes=1024**2, uid_range=uid_range)
    crashed.check()
    jobs = Jobs(crashed, tmp_path)

    # a sandboxed job whose server "died": nobody waits for it
    spec = jobs.spec("import time; print('up', flush=True); time.sleep(300)")
    execution, buf = jobs.start(spec)
    buf.watch = b"up"
    buf.seen.wait(30)
    job_marker = str(spec.args[1])
    assert host_processes_with(job_marker)

    # a bare process left in a job cgroup, not a child of any executor
    system = crashed._cgroup_system()
    stray_group = system.create("stray", Limits())
    stray_marker = f"atoll-stray-{uuid.uuid4().hex}"
    joins = "; ".join(f"echo $$ > {f}" for f in stray_group.procs_files)
    stray = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f'{joins}; exec "$@"',
            "sh",
            "/usr/bin/python3",
            "-c",
            "import time; time.sleep(300)",
            stray_marker,
        ]
    )
    # a process with a job uid that no executor holds, in no cgroup of the executor's
    orphan_marker = f"atoll-orphan-{uuid.uuid4().hex}"
    orphan = subprocess.Popen(
        ["setpriv", "--reuid", str(uid_range[1]), "--regid", str(uid_range[1]),
         "--clear-groups", "/usr/bin/python3", "-c", "import time; time.sleep(300)",
         orphan_marker]
    )  # fmt: skip
    # a tmpfs left mounted by the crashed executor
    leftover_mount = tmp_path / "leftover"
    leftover_mount.mkdir()
    mounts.mount_tmpfs(crashed.mount_marker, leftover_mount, 1024**2, 256)
    for _ in range(500):
        if stray_group.pids() and host_processes_with(orphan_marker):
            break
        threading.Event().wait(0.01)
    assert stray_group.pids()
    assert host_processes_with(orphan_marker)
    # outputs, logs, and the staging tmpfs with its binds of both
    assert len(marked_mount_points(crashed.mount_marker)) == 6
    stage_dir = crashed.stage_root / name
    assert len(os.listdir(stage_dir)) == 1

    SandboxExecutor(cgroup_name=name, uid_range=uid_range).recover()

    assert host_processes_with(job_marker) == []
    assert host_processes_with(stray_marker) == []
    assert host_processes_with(orphan_marker) == []
    assert stray.wait(timeout=30) != 0
    assert orphan.wait(timeout=30) != 0
    assert system.leftovers() == []
    assert marked_mount_points(crashed.mount_marker) == []
    assert not os.path.ismount(leftover_mount)
    assert os.listdir(stage_dir) == []
    # the abandoned execution can still be reaped without hanging
    assert execution.wait().reason in set(ExitReason)
    execution.release()
    for parent in system.parent_dirs().values():
        parent.rmdir()
    stage_dir.rmdir()
    jobs = Jobs(sandbox, tmp_path / "after")
    (tmp_path / "after").mkdir()
    jobs.assert_healthy()


def test_bubblewrap_setup_error_fails_closed_without_leaking_paths(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atoll.engine.sandbox.bwrap import bwrap_argv as real_argv

    missing = f"/nonexistent-{uuid.uuid4().hex}"

    def broken_argv(*args: object, **kwargs: object) -> list[str]:
        argv = real_argv(*args, **kwargs)  # type: ignore[arg-type]
        end = argv.index("--")
        return [*argv[:end], "--ro-bind", missing, "/data/extra", *argv[end:]]

    monkeypatch.setattr("atoll.engine.sandbox.executor.bwrap_argv", broken_argv)
    spec = jobs.spec("open('/data/outputs/ran', 'w')")
    seen: list[bytes] = []
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, seen.append)
    # bubblewrap's own message names the host path: it must reach neither the consumer's
    # log nor the exception
    assert missing not in str(info.value)
    assert seen == []
    assert not os.path.ismount(spec.outputs_dir)
    assert not any(d.exists() for d in _job_cgroup_dirs(jobs.executor, spec.job_id))
    assert host_processes_with(str(spec.args[1])) == []


def test_global_sysctls_are_read_only(jobs: Jobs) -> None:
    # Whatever uid the job has, /proc is read-only as a whole: no sysctl depends on the
    # kernel's own checks alone.
    knobs = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/fs/protected_symlinks",
        "/proc/sys/kernel/domainname",
        "/proc/sys/vm/overcommit_memory",
    ]
    before = {k: Path(k).read_text() for k in knobs if Path(k).exists()}
    run = jobs.run(
        f"""
        def rewrite(path):
            value = open(path).read()
            with open(path, "w") as f:
                f.write(value)
        report(**{{k: attempt(rewrite, k) for k in {sorted(before)!r}}},
               self_oom=attempt(lambda: open("/proc/self/oom_score_adj", "w").write("500")),
               sysrq=attempt(lambda: open("/proc/sysrq-trigger", "w").write("h")))
        """
    )
    assert all(v in {"EROFS", "EACCES", "EPERM", "ENOENT"} for v in run.report.values()), run.report
    assert "/proc/sys/kernel/core_pattern" in run.report
    assert {k: Path(k).read_text() for k in before} == before
    jobs.assert_healthy()
