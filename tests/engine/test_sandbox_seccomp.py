"""The system call filter: each test calls what the filter denies from inside a real sandboxed
job (raw system calls through ctypes) and checks the kernel refused it, then checks that what
jobs need (threads, processes, files) still works."""

from __future__ import annotations

import logging
import platform
import sys
import uuid
from pathlib import Path

import pytest

from atoll.engine.executor import ExitReason, SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor
from atoll.engine.sandbox.bwrap import HostSystem, bwrap_argv
from atoll.engine.sandbox.seccomp import DENIED, build_filter
from atoll.errors import Forbidden

from .conftest import Jobs, sandbox_unavailable_reason, skip_or_fail


@pytest.fixture
def jobs(any_jobs: Jobs) -> Jobs:
    """The jobs here run with the host's runtime, then with an image's."""
    return any_jobs


#: system call numbers of the calls tried, per architecture
NUMBERS = {
    "x86_64": {
        "io_uring_setup": 425,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
        "keyctl": 250,
        "add_key": 248,
        "ptrace": 101,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "clone3": 435,
        "process_vm_readv": 310,
    },
    "aarch64": {
        "io_uring_setup": 425,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
        "keyctl": 219,
        "add_key": 217,
        "ptrace": 117,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "clone3": 435,
        "process_vm_readv": 270,
    },
}

#: a job that makes each call with arguments that would succeed without the filter, where an
#: unprivileged process may make it at all, and reports the errno of each
PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {numbers!r}

def call(name, *args):
    ctypes.set_errno(0)
    res = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])
    if res == 0 and name == "clone3":
        os._exit(0)  # the child of a clone3 that went through
    if res >= 0:
        return "ok"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

ring_params = ctypes.create_string_buffer(120)
# a software clock event of this process: allowed at every perf_event_paranoid level below 3
attr = ctypes.create_string_buffer(128)
ctypes.c_uint32.from_buffer(attr, 0).value = 1            # PERF_TYPE_SOFTWARE
ctypes.c_uint32.from_buffer(attr, 4).value = 128          # size
ctypes.c_uint64.from_buffer(attr, 40).value = (1 << 5) | (1 << 6)  # exclude kernel, hv
bpf_attr = ctypes.create_string_buffer(128)
ctypes.c_uint32.from_buffer(bpf_attr, 0).value = 2        # BPF_MAP_TYPE_ARRAY
ctypes.c_uint32.from_buffer(bpf_attr, 4).value = 4
ctypes.c_uint32.from_buffer(bpf_attr, 8).value = 4
ctypes.c_uint32.from_buffer(bpf_attr, 12).value = 1
clone_args = ctypes.create_string_buffer(88)
peer = ctypes.create_string_buffer(8)
local = (ctypes.c_uint64 * 2)(ctypes.addressof(peer), 8)
remote = (ctypes.c_uint64 * 2)(ctypes.addressof(ring_params), 8)
report(
    io_uring_setup=call("io_uring_setup", 4, ctypes.addressof(ring_params)),
    perf_event_open=call("perf_event_open", ctypes.addressof(attr), 0, -1, -1, 0),
    bpf=call("bpf", 0, ctypes.addressof(bpf_attr), 128),
    userfaultfd=call("userfaultfd", 1),                   # UFFD_USER_MODE_ONLY
    keyctl=call("keyctl", 1, 0),                          # KEYCTL_JOIN_SESSION_KEYRING
    add_key=call("add_key", ctypes.addressof(ctypes.create_string_buffer(b"user")),
                 ctypes.addressof(ctypes.create_string_buffer(b"atoll")),
                 ctypes.addressof(peer), 8, -3),          # KEY_SPEC_SESSION_KEYRING
    ptrace=call("ptrace", 16, 1, 0, 0),                   # PTRACE_ATTACH to the sandbox's pid 1
    unshare_user=call("unshare", 0x10000000),             # CLONE_NEWUSER
    unshare_net=call("unshare", 0x40000000),              # CLONE_NEWNET
    setns=call("setns", os.open("/proc/self/ns/uts", os.O_RDONLY), 0),
    mount=call("mount", 0, ctypes.addressof(ctypes.create_string_buffer(b"/tmp")), 0, 4096, 0),
    clone3=call("clone3", ctypes.addressof(clone_args), 88),
    process_vm_readv=call("process_vm_readv", 1, ctypes.addressof(local), 1,
                          ctypes.addressof(remote), 1, 0),
)
"""


def _numbers() -> dict[str, int]:
    numbers = NUMBERS.get(platform.machine())
    if numbers is None:
        pytest.skip(f"no system call numbers for {platform.machine()}")
    return numbers


def test_denied_calls_fail_inside_a_job(jobs: Jobs) -> None:
    run = jobs.run(PROBE.format(numbers=_numbers()))
    assert run.result.reason is ExitReason.EXITED and run.result.exit_code == 0, run.log
    refused = {name: "EPERM" for name in run.report if name != "clone3"}
    # clone3's flags are out of the filter's sight: ENOSYS makes the C library use clone
    assert run.report == {**refused, "clone3": "ENOSYS"}
    jobs.assert_healthy()


def test_threads_processes_and_files_still_work(jobs: Jobs) -> None:
    # the test image has no shell: its child is its Python
    child = ["/bin/sh", "-c", "echo child"] if jobs.image is None else [
        "/usr/bin/python3", "-c", "print('child')"
    ]  # fmt: skip
    run = jobs.run(
        f"""
        import subprocess, threading
        box = []
        t = threading.Thread(target=lambda: box.append("thread"))
        t.start(); t.join()
        out = subprocess.run({child!r}, capture_output=True, text=True)
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        with open("/data/outputs/x", "w") as f:
            f.write("written")
        report(thread=box, child=out.stdout.strip(), forked=os.waitstatus_to_exitcode(status),
               read=open("/data/outputs/x").read())
        """
    )
    assert run.report == {"thread": ["thread"], "child": "child", "forked": 7, "read": "written"}


def test_job_cannot_speak_on_the_setup_channel(
    jobs: Jobs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox's pid 1 (and a job's egress forwarder) hold the setup channel, and share the
    # job's uid. Whatever way a job finds onto that channel, what it writes there must never
    # be logged by the provider as its own words. Here the job is simply handed the channel
    # as its stderr, the worst case.
    from atoll.engine.sandbox import bwrap

    monkeypatch.setattr(
        bwrap, "INNER_SCRIPT", f'echo {bwrap.READY.decode().strip()} >&2 && exec "$@"'
    )
    marker = f"PROVIDER-SAYS-{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG, logger="atoll"):
        run = jobs.run(
            f"""
            import time
            def say():
                os.write(2, ({marker!r} + "\\n").encode())
            first = attempt(say)
            time.sleep(0.5)
            report(first=first, later=attempt(say))
            """
        )
    assert run.result.reason is ExitReason.EXITED, run.log
    assert marker not in caplog.text
    # once the sandbox has started the channel is closed, so a late write goes nowhere
    assert run.report["later"] == "EPIPE"


def test_filter_that_cannot_be_built_fails_closed(tmp_path: Path) -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    # an interpreter without libseccomp's binding: the one running these tests
    executor = SandboxExecutor(
        cgroup_name=f"atoll-test-noseccomp-{uuid.uuid4().hex[:8]}", seccomp_python=sys.executable
    )
    with pytest.raises(SandboxUnavailable, match="system call filter"):
        executor.check()


def test_filter_is_a_bpf_program_covering_the_policy() -> None:
    program = build_filter()
    assert program and len(program) % 8 == 0
    assert {"io_uring_setup", "perf_event_open", "bpf", "userfaultfd", "keyctl", "ptrace"} <= set(
        DENIED
    )
    with pytest.raises(SandboxUnavailable):
        build_filter(python="/nonexistent/python3")


def test_bwrap_argv_hands_the_filter_before_the_command(tmp_path: Path) -> None:
    from atoll.engine.executor import ExecutionSpec, Runtime

    spec = ExecutionSpec(
        job_id="j",
        runtime=Runtime(Path("/usr/bin/python3")),
        args=["/data/transformations/algorithm"],
        mounts=[],
        env={},
        outputs_dir=tmp_path / "o",
        logs_dir=tmp_path / "l",
    )
    argv = bwrap_argv("bwrap", spec, shell="/bin/sh", host=HostSystem(), seccomp_fd=9)
    end = argv.index("--")
    assert argv[argv.index("--seccomp") + 1] == "9"
    assert argv.index("--seccomp") < end


def test_job_without_a_filter_does_not_run(tmp_path: Path) -> None:
    from atoll.models.status import JobStatus
    from tests.helpers import running_provider

    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    executor = SandboxExecutor(
        cgroup_name=f"atoll-test-nofilter-{uuid.uuid4().hex[:8]}", seccomp_python=sys.executable
    )
    with running_provider(tmp_path / "home", executor=executor) as provider:
        did = provider.dataset(tmp_path)
        info = provider.consumer.start(did, rawcode="print('ran')")
        info = provider.consumer.wait(info.jobId, timeout=60)
        # a job that did not run serves nothing, not even its log
        with pytest.raises(Forbidden, match="nothing of it is served"):
            b"".join(provider.consumer.logs(info.jobId))
    assert info.status == JobStatus.SANDBOX_UNAVAILABLE
    assert "system call filter" in info.statusText
