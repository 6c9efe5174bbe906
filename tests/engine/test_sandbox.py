"""The sandbox executor: normal jobs, what a job sees, and the pure parts (command line,
cgroup files, mount table parsing) that need no kernel support."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atoll.engine.executor import (
    ExecutionSpec,
    ExitReason,
    Limits,
    Mount,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.sandbox import SandboxExecutor
from atoll.engine.sandbox.bwrap import (
    INNER_SCRIPT,
    READY,
    HostSystem,
    bwrap_argv,
    fsize_blocks,
    launcher_script,
)
from atoll.engine.sandbox.cgroups import (
    CFS_PERIOD_US,
    SANDBOX_PIDS,
    CgroupV1,
    CgroupV2,
    JobCgroup,
    detect,
    job_cgroup_name,
    v1_limit_files,
    v2_limit_files,
)
from atoll.engine.sandbox.execution import truncation_note
from atoll.engine.sandbox.launch import inode_cap
from atoll.engine.sandbox.mounts import parse_mountinfo, tmpfs_options

from .conftest import SMALL, Jobs, host_processes_with

# -- jobs that behave -------------------------------------------------------------------


def test_job_prints_and_writes_an_output_file(jobs: Jobs) -> None:
    run = jobs.run(
        """
        print("hello from the job")
        with open("/data/outputs/result.txt", "w") as f:
            f.write("42")
        os.mkdir("/data/outputs/sub")
        open("/data/logs/extra.log", "w").write("a log line")
        report(cwd=os.getcwd())
        """
    )
    assert run.result.reason is ExitReason.EXITED
    assert run.result.exit_code == 0
    assert b"hello from the job\n" in run.log
    assert run.outputs == {"result.txt": b"42"}
    assert run.report["cwd"] == "/data"
    assert run.result.duration > 0


def test_nonzero_exit_code_is_reported(jobs: Jobs) -> None:
    run = jobs.run("sys.stderr.write('oops\\n'); sys.exit(3)")
    assert run.result.reason is ExitReason.EXITED
    assert run.result.exit_code == 3
    assert b"oops" in run.log  # stderr reaches the log too
    assert "3" in run.result.detail


def test_environment_is_scrubbed(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOLL_SECRET", "hunter2")
    run = jobs.run("report(env=dict(os.environ))", env={"ALGO_PARAM": "7"})
    env = run.report["env"]
    assert "ATOLL_SECRET" not in env
    assert "hunter2" not in run.log.decode()
    assert env["ALGO_PARAM"] == "7"
    assert env["HOME"] == "/tmp"
    assert env["LANG"] == "C.UTF-8"
    assert "/usr/bin" in env["PATH"].split(":")
    # only what the spec gave, the minimal base, and what bwrap/python set themselves
    assert set(env) <= {"ALGO_PARAM", "PATH", "HOME", "LANG", "PWD", "LC_CTYPE"}


def test_job_runs_unprivileged(jobs: Jobs) -> None:
    run = jobs.run(
        """
        status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines())
        report(uid=os.getuid(), euid=os.geteuid(), gid=os.getgid(), groups=os.getgroups(),
               cap_eff=status["CapEff"], cap_prm=status["CapPrm"], cap_bnd=status["CapBnd"],
               no_new_privs=status["NoNewPrivs"])
        """
    )
    r = run.report
    assert (r["uid"], r["euid"], r["gid"]) == (65534, 65534, 65534)
    assert int(r["cap_eff"], 16) == 0
    assert int(r["cap_prm"], 16) == 0
    assert int(r["cap_bnd"], 16) == 0
    assert r["no_new_privs"] == "1"


def test_hostname_is_sandbox(jobs: Jobs) -> None:
    run = jobs.run("import socket; report(name=socket.gethostname(), uname=os.uname().nodename)")
    assert run.report == {"name": "sandbox", "uname": "sandbox"}


def test_inputs_are_readable_at_their_target(jobs: Jobs, tmp_path: Path) -> None:
    data = tmp_path / "dataset.csv"
    data.write_text("a,b\n1,2\n")
    ddo_dir = tmp_path / "ddos"
    ddo_dir.mkdir()
    (ddo_dir / "did:op:1").write_text('{"id": "did:op:1"}')
    run = jobs.run(
        """
        report(data=open("/data/inputs/did:op:1/0").read(),
               ddos=os.listdir("/data/ddos"),
               ddo=open("/data/ddos/did:op:1").read())
        """,
        mounts=[Mount(data, "/data/inputs/did:op:1/0"), Mount(ddo_dir, "/data/ddos")],
    )
    assert run.report == {
        "data": "a,b\n1,2\n",
        "ddos": ["did:op:1"],
        "ddo": '{"id": "did:op:1"}',
    }


def test_writable_mount_is_writable_where_its_modes_allow(jobs: Jobs, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o777)
    roots = tmp_path / "roots"
    roots.mkdir(mode=0o755)
    run = jobs.run(
        """
        report(w=attempt(lambda: open('/data/scratch/f', 'w').write('x')),
               roots=attempt(lambda: open('/data/roots/f', 'w').write('x')))
        """,
        mounts=[
            Mount(scratch, "/data/scratch", writable=True),
            Mount(roots, "/data/roots", writable=True),
        ],
    )
    # the job writes as its own unprivileged uid, not as root
    assert run.report == {"w": "ok", "roots": "EACCES"}
    assert (scratch / "f").read_text() == "x"
    assert (scratch / "f").stat().st_uid != 0
    assert list(roots.iterdir()) == []


def test_only_capped_places_are_writable(jobs: Jobs) -> None:
    run = jobs.run(
        """
        places = ["/", "/data", "/usr", "/etc", "/dev", "/dev/shm", "/proc", "/tmp",
                  "/data/outputs", "/data/logs"]
        report(**{p: attempt(lambda p=p: open(os.path.join(p, "probe"), "w").write("x"))
                  for p in places})
        """
    )
    r = run.report
    for place in ("/tmp", "/data/outputs", "/data/logs"):
        assert r.pop(place) == "ok"
    assert all(v != "ok" for v in r.values()), r


def test_tmp_is_small(jobs: Jobs, sandbox: SandboxExecutor) -> None:
    run = jobs.run(
        f"""
        def fill():
            with open("/tmp/big", "wb") as f:
                for _ in range({sandbox.tmp_bytes // 65536 + 8}):
                    f.write(b"x" * 65536)
        report(fill=attempt(fill))
        """
    )
    assert run.report == {"fill": "ENOSPC"}


def test_rlimits_inside(jobs: Jobs) -> None:
    limits = dataclasses.replace(SMALL, cpu_seconds=7, file_size_bytes=100_000)
    run = jobs.run(
        """
        import resource as r
        report(cpu=r.getrlimit(r.RLIMIT_CPU), fsize=r.getrlimit(r.RLIMIT_FSIZE),
               core=r.getrlimit(r.RLIMIT_CORE),
               big=attempt(lambda: open("/tmp/f", "wb").write(b"x" * 200_000)))
        """,
        limits=limits,
    )
    r = run.report
    assert r["cpu"] == [7, 8]  # SIGXCPU at 7 s, SIGKILL at 8 s
    assert r["fsize"] == [99_840, 99_840]  # rounded down to 512-byte blocks
    assert r["core"] == [0, 0]
    assert r["big"] == "EFBIG"


def test_user_namespaces_are_disabled_inside(jobs: Jobs) -> None:
    run = jobs.run(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.unshare(0x10000000)  # CLONE_NEWUSER
        report(rc=rc, errno=errno.errorcode.get(ctypes.get_errno()))
        """
    )
    assert run.report["rc"] == -1
    assert run.report["errno"] in {"ENOSPC", "EPERM", "EINVAL"}


def test_runtime_paths_are_mounted(jobs: Jobs, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(
        ["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    run = jobs.run(
        "report(prefix=sys.prefix)",
        runtime=Runtime(venv / "bin" / "python", paths=(venv,)),
    )
    assert run.report == {"prefix": str(venv)}


def test_outputs_stay_mounted_until_release(jobs: Jobs) -> None:
    spec = jobs.spec("open('/data/outputs/o.txt', 'w').write('out')")
    execution, _ = jobs.start(spec)
    result = execution.wait()
    assert result.reason is ExitReason.EXITED
    assert os.path.ismount(spec.outputs_dir)
    assert (spec.outputs_dir / "o.txt").read_text() == "out"
    assert execution.wait() is result  # idempotent
    cgroup_dirs = execution._cgroup.dirs
    assert all(d.is_dir() for d in cgroup_dirs)
    execution.release()
    execution.release()
    assert not os.path.ismount(spec.outputs_dir)
    assert list(spec.outputs_dir.iterdir()) == []  # the data lived on the tmpfs only
    assert not any(d.exists() for d in cgroup_dirs)


def test_a_closed_executor_leaves_no_thread_behind(
    sandbox: SandboxExecutor, tmp_path: Path
) -> None:
    import threading

    from tests.engine.conftest import PYTHON
    from tests.engine.executor_conformance import ExecutorConformance

    def spawners() -> int:
        return sum(t.name.startswith("atoll-sandbox") for t in threading.enumerate())

    before = spawners()
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}-closed")
    executor.check()
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), "print('ok')")
    execution = executor.start(spec, lambda _: None)
    assert execution.wait().exit_code == 0
    execution.release()
    assert spawners() == before + 1
    executor.recover()
    executor.close()
    deadline = time.monotonic() + 10
    while spawners() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spawners() == before


def test_check_runs_the_probe_once(monkeypatch: pytest.MonkeyPatch) -> None:
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}-once", bwrap="/nonexistent")
    calls = []
    original = executor._probe

    def counting() -> None:
        calls.append(1)
        original()

    monkeypatch.setattr(executor, "_probe", counting)
    for _ in range(3):
        with pytest.raises(SandboxUnavailable):
            executor.check()
    assert len(calls) == 1


def test_interpreter_outside_the_runtime_paths_is_refused(jobs: Jobs, tmp_path: Path) -> None:
    outside = tmp_path / "python"
    outside.symlink_to("/usr/bin/python3")
    spec = jobs.spec("pass", runtime=Runtime(outside))
    with pytest.raises(SandboxUnavailable) as info:
        jobs.executor.start(spec, lambda _: None)
    assert str(tmp_path) not in str(info.value)
    assert not os.path.ismount(spec.outputs_dir)


# -- the command line ---------------------------------------------------------------------


def _spec(tmp_path: Path, **kw: object) -> ExecutionSpec:
    fields: dict[str, object] = {
        "job_id": "j1",
        "runtime": Runtime(Path("/usr/bin/python3")),
        "args": ["/data/transformations/algorithm"],
        "mounts": [
            Mount(Path("/srv/in"), "/data/inputs/x/0"),
            Mount(Path("/srv/rw"), "/data/rw", writable=True),
        ],
        "env": {"A": "1"},
        "outputs_dir": tmp_path / "out",
        "logs_dir": tmp_path / "logs",
    }
    fields.update(kw)
    return ExecutionSpec(**fields)  # type: ignore[arg-type]


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_bwrap_argv_isolation_flags(tmp_path: Path) -> None:
    host = HostSystem(links=(("usr/bin", "/bin"), ("usr/lib", "/lib")))
    argv = bwrap_argv("/usr/bin/bwrap", _spec(tmp_path), shell="/usr/bin/sh", host=host)
    end = argv.index("--")
    options = argv[:end]
    for flag in (
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in options, flag
    assert "--share-net" not in argv
    assert "--unshare-all" not in argv  # it silently skips namespaces it cannot make
    assert options[options.index("--uid") + 1] == "65534"
    assert options[options.index("--gid") + 1] == "65534"
    assert options[options.index("--hostname") + 1] == "sandbox"
    assert options[options.index("--cap-drop") + 1] == "ALL"
    assert options[options.index("--proc") + 1] == "/proc"
    assert options[options.index("--dev") + 1] == "/dev"
    size = options.index("--size")
    assert options[size + 2 : size + 4] == ["--tmpfs", "/tmp"]
    assert ("/srv/in", "/data/inputs/x/0") in _pairs(options, "--ro-bind")
    assert ("/srv/rw", "/data/rw") in _pairs(options, "--bind")
    assert (str(tmp_path / "out"), "/data/outputs") in _pairs(options, "--bind")
    assert (str(tmp_path / "logs"), "/data/logs") in _pairs(options, "--bind")
    assert ("/usr", "/usr") in _pairs(options, "--ro-bind")
    assert ("/etc/ld.so.cache", "/etc/ld.so.cache") in _pairs(options, "--ro-bind")
    assert ("usr/bin", "/bin") in _pairs(options, "--symlink")
    # nothing else of the host is bound
    binds = _pairs(options, "--ro-bind") + _pairs(options, "--bind")
    assert {src for src, _ in binds} == {
        "/usr",
        "/etc/ld.so.cache",
        "/srv/in",
        "/srv/rw",
        str(tmp_path / "out"),
        str(tmp_path / "logs"),
    }
    # / and /dev are made read-only after everything is mounted on them
    remounts = [options[i + 1] for i, a in enumerate(options) if a == "--remount-ro"]
    assert remounts == ["/", "/dev", "/proc"]
    assert options.index("--remount-ro") > max(i for i, a in enumerate(options) if "bind" in a)
    envs = dict(_pairs(options, "--setenv"))
    assert envs == {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"} | {
        "A": "1"
    }
    assert argv[end + 1 :] == [
        "/usr/bin/sh",
        "-c",
        INNER_SCRIPT,
        "atoll-job",
        "/usr/bin/python3",
        "/data/transformations/algorithm",
    ]


def test_bwrap_argv_without_disable_userns_support(tmp_path: Path) -> None:
    argv = bwrap_argv(
        "bwrap", _spec(tmp_path), shell="/bin/sh", host=HostSystem(), disable_userns=False
    )
    assert "--disable-userns" not in argv
    assert "--unshare-user" in argv


def test_bwrap_argv_runtime_paths_are_read_only(tmp_path: Path) -> None:
    spec = _spec(tmp_path, runtime=Runtime(Path("/opt/py/bin/python"), paths=(Path("/opt/py"),)))
    argv = bwrap_argv("bwrap", spec, shell="/bin/sh", host=HostSystem())
    assert ("/opt/py", "/opt/py") in _pairs(argv, "--ro-bind")
    assert "/opt/py" not in {src for src, _ in _pairs(argv, "--bind")}


def test_bwrap_argv_rejects_bad_env(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable):
        bwrap_argv("bwrap", _spec(tmp_path, env={"A=B": "x"}), shell="/bin/sh", host=HostSystem())


def test_launcher_script_sets_rlimits_in_dash_units(tmp_path: Path) -> None:
    limits = Limits(cpu_seconds=5, file_size_bytes=1_000_000)
    assert fsize_blocks(1_000_000) == 1953
    assert fsize_blocks(100) == 1
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    script = launcher_script([procs], limits)
    out = subprocess.run(
        [
            "/bin/sh",
            "-c",
            script,
            "atoll-sandbox",
            sys.executable,
            "-c",
            "import os, resource as r; print(os.getpid(), r.getrlimit(r.RLIMIT_CPU),"
            " r.getrlimit(r.RLIMIT_FSIZE), r.getrlimit(r.RLIMIT_CORE))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split(" ", 1)
    # the shell wrote its own pid, and exec kept that pid for the program
    assert procs.read_text().strip() == out[0]
    assert out[1].strip() == "(5, 6) (999936, 999936) (0, 0)"


def test_launcher_script_stops_when_a_cgroup_cannot_be_joined(tmp_path: Path) -> None:
    script = launcher_script([tmp_path / "missing" / "cgroup.procs"], Limits())
    done = subprocess.run(
        ["/bin/sh", "-c", script, "atoll-sandbox", "/bin/echo", "ran"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ran" not in done.stdout


def test_inner_script_announces_readiness_then_merges_stderr() -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", INNER_SCRIPT, "atoll-job", "/bin/sh", "-c", "echo out; echo err >&2"],
        capture_output=True,
        timeout=60,
    )
    assert done.stderr == READY
    assert done.stdout == b"out\nerr\n"


# -- cgroup files (v1 and v2), without the kernel ------------------------------------------


def test_v1_limit_files() -> None:
    limits = Limits(memory_bytes=64 * 1024**2, pids=10, cpus=1.5)
    files = {(f.controller, f.name): (f.value, f.required) for f in v1_limit_files(limits)}
    assert files == {
        ("memory", "memory.limit_in_bytes"): (str(64 * 1024**2), True),
        ("memory", "memory.memsw.limit_in_bytes"): (str(64 * 1024**2), False),
        ("memory", "memory.swappiness"): ("0", False),
        ("pids", "pids.max"): (str(10 + SANDBOX_PIDS), True),
        ("cpu", "cpu.cfs_period_us"): (str(CFS_PERIOD_US), True),
        ("cpu", "cpu.cfs_quota_us"): ("150000", True),
    }
    names = [f.name for f in v1_limit_files(limits)]
    # memsw may never be below limit_in_bytes, so it must be written second
    assert names.index("memory.limit_in_bytes") < names.index("memory.memsw.limit_in_bytes")


def test_v2_limit_files() -> None:
    limits = Limits(memory_bytes=128 * 1024**2, pids=5, cpus=0.5)
    files = {f.name: (f.value, f.required) for f in v2_limit_files(limits)}
    assert files == {
        "memory.max": (str(128 * 1024**2), True),
        "memory.swap.max": ("0", False),
        "memory.oom.group": ("1", False),
        "pids.max": (str(5 + SANDBOX_PIDS), True),
        "cpu.max": ("50000 100000", True),
    }
    assert all(f.controller == "" for f in v2_limit_files(limits))
    unlimited_cpu = {f.name: f.value for f in v2_limit_files(Limits(cpus=0))}
    assert unlimited_cpu["cpu.max"] == "max 100000"
    tiny = {f.name: f.value for f in v2_limit_files(Limits(cpus=0.001))}
    assert tiny["cpu.max"] == "1000 100000"  # the kernel's minimum quota


V2_MOUNTINFO = "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"  # noqa: E501

V1_MOUNTINFO = """\
25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
29 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
"""


def test_detect_v2() -> None:
    system = detect(
        V2_MOUNTINFO, parent="atoll", read_text=lambda _: "cpuset cpu io memory hugetlb pids"
    )
    assert isinstance(system, CgroupV2)
    assert system.parent_dirs() == {"": Path("/sys/fs/cgroup/atoll")}


def test_detect_v2_without_controllers_falls_back_to_v1() -> None:
    system = detect(V2_MOUNTINFO + V1_MOUNTINFO, read_text=lambda _: "cpu io")
    assert isinstance(system, CgroupV1)


def test_detect_v1_with_comounted_controllers() -> None:
    system = detect(V1_MOUNTINFO, parent="atoll", read_text=lambda _: "")
    assert isinstance(system, CgroupV1)
    assert system.parent_dirs() == {
        "memory": Path("/sys/fs/cgroup/memory/atoll"),
        "pids": Path("/sys/fs/cgroup/pids/atoll"),
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct/atoll"),
    }


def test_detect_nothing_usable() -> None:
    mountinfo = "27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    with pytest.raises(SandboxUnavailable) as info:
        detect(mountinfo, read_text=lambda _: "")
    assert "/" not in str(info.value)
    assert "pids" in str(info.value)


def test_v2_job_cgroup_files(tmp_path: Path) -> None:
    job = JobCgroup(2, {"": tmp_path / "atoll" / "job-x"})
    assert job.procs_files == (tmp_path / "atoll" / "job-x" / "cgroup.procs",)
    (tmp_path / "atoll" / "job-x").mkdir(parents=True)
    (tmp_path / "atoll" / "job-x" / "memory.events").write_text(
        "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"
    )
    (tmp_path / "atoll" / "job-x" / "cgroup.procs").write_text("")
    assert job.oom_kills() == 1
    assert job.pids() == set()
    assert launcher_script(job.procs_files, Limits()).startswith(
        f"echo $$ >{tmp_path}/atoll/job-x/cgroup.procs && "
    )


def test_a_cgroup_removed_while_its_processes_are_read_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stop racing the job's own clean-up: the directory goes between open and read
    job = JobCgroup(2, {"": tmp_path / "job-x"})
    real = Path.read_text

    def removed(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "cgroup.procs":
            raise OSError(errno.ENODEV, "No such device")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", removed)
    assert job.pids() == set()
    assert job.kill(timeout=0.1) is True


def test_an_unreadable_cgroup_is_not_taken_for_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = JobCgroup(2, {"": tmp_path / "job-x"})

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(PermissionError):
        job.pids()


def test_v1_oom_counter(tmp_path: Path) -> None:
    memory = tmp_path / "memory" / "atoll" / "job-x"
    memory.mkdir(parents=True)
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    job = JobCgroup(1, {"memory": memory, "pids": tmp_path / "pids" / "atoll" / "job-x"})
    assert job.oom_kills() == 3
    assert [p.parent.parent.parent.name for p in job.procs_files] == ["memory", "pids"]


def test_leftovers_are_listed_per_job(tmp_path: Path) -> None:
    system = CgroupV1({"memory": tmp_path / "memory", "pids": tmp_path / "pids"}, "atoll")
    (tmp_path / "memory" / "atoll" / "job-a").mkdir(parents=True)
    (tmp_path / "pids" / "atoll" / "job-a").mkdir(parents=True)
    (tmp_path / "pids" / "atoll" / "job-b").mkdir(parents=True)
    found = {j.dirs[0].name: j.by_controller for j in system.leftovers()}
    assert set(found) == {"job-a", "job-b"}
    assert set(found["job-a"]) == {"memory", "pids"}
    assert set(found["job-b"]) == {"pids"}


def test_job_cgroup_name() -> None:
    assert job_cgroup_name("abc-123_x.y") == "job-abc-123_x.y"
    odd = job_cgroup_name("../../etc")
    assert "/" not in odd and odd.startswith("job-")
    assert job_cgroup_name("a/b") != job_cgroup_name("a_b")
    assert len(job_cgroup_name("x" * 1000)) < 200


# -- mounts -------------------------------------------------------------------------------


def test_parse_mountinfo_unescapes_paths() -> None:
    text = (
        "100 30 0:55 / /srv/jobs/with\\040space/outputs rw,nosuid shared:1 master:2"
        " - tmpfs atoll-job rw,size=1024k,nr_inodes=256,mode=700\n"
    )
    (entry,) = parse_mountinfo(text)
    assert entry.mount_point == "/srv/jobs/with space/outputs"
    assert entry.fstype == "tmpfs"
    assert entry.source == "atoll-job"
    assert "nr_inodes=256" in entry.super_options


def test_tmpfs_options_never_unlimited() -> None:
    # tmpfs reads size=0 and nr_inodes=0 as "no limit"
    assert tmpfs_options(0, 0).startswith(f"size={os.sysconf('SC_PAGE_SIZE')},nr_inodes=2,")
    assert tmpfs_options(1024**2, 256) == "size=1048576,nr_inodes=256,mode=700"
    assert inode_cap(0) == 256
    assert inode_cap(256 * 1024**2) == 65536


def test_truncation_note_is_one_line() -> None:
    note = truncation_note(1024)
    assert note.count(b"\n") == 2 and note.startswith(b"\n")
    assert b"1024" in note


def test_comounted_v1_controllers_share_one_directory(tmp_path: Path) -> None:
    shared = tmp_path / "memory,pids" / "atoll" / "job-x"
    job = JobCgroup(1, {"memory": shared, "pids": shared, "cpu": tmp_path / "cpu" / "job-x"})
    assert job.procs_files == (shared / "cgroup.procs", tmp_path / "cpu" / "job-x" / "cgroup.procs")


def test_every_process_of_the_job_is_in_its_limited_cgroup(jobs: Jobs) -> None:
    spec = jobs.spec(
        """
        import time
        if os.fork() == 0:
            time.sleep(60)
        print("up", flush=True)
        time.sleep(60)
        """
    )
    execution, buf = jobs.start(spec)
    buf.watch = b"up"
    try:
        assert buf.seen.wait(30)
        cgroup = execution._cgroup
        job_pids = set(host_processes_with(str(spec.args[1])))
        # bwrap's monitor and reaper, the job and its child
        assert len(job_pids) == 4
        for procs in cgroup.procs_files:
            assert job_pids <= {int(p) for p in procs.read_text().split()}
        system = jobs.executor._cgroup_system()
        for lf in system.limit_files(spec.limits):
            path = cgroup.by_controller[lf.controller] / lf.name
            if path.exists():
                assert path.read_text().split() == lf.value.split(), lf
    finally:
        execution.cancel()
        jobs.finish(spec, execution, buf)
