"""The system call filter every job runs under, handed to bubblewrap as a compiled BPF program
(``--seccomp FD``); bubblewrap applies it to the job and to the sandbox's own pid 1.

The policy follows Docker's default profile where it matters for a job that has no
capabilities: the calls that reach kernel surfaces a job never needs (io_uring, perf events,
BPF, userfaultfd, the key rings), that act on other processes (ptrace, process_vm_*), or that
change mounts and namespaces, fail with EPERM. ``clone`` is refused only with a namespace flag;
``clone3`` passes its flags in memory a filter cannot read, so it answers ENOSYS, which makes
the C library fall back to ``clone`` (as under Docker). Calls of another ABI than the host's
(32-bit calls on a 64-bit kernel) kill the process: libseccomp's default for a foreign
architecture.

The program is compiled by libseccomp through its Python binding, Debian's ``python3-seccomp``.
That binding belongs to the system's interpreter, not to whatever interpreter runs the
provider, so :func:`build_filter` runs it in a child process of that interpreter
(:data:`HELPER`) and takes the program from its standard output. Any failure raises
:class:`SandboxUnavailable`: without the filter no job runs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import platform
import subprocess
from pathlib import Path

from atoll.engine.executor import SandboxUnavailable

#: the interpreter that has libseccomp's binding (python3-seccomp)
log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = Path(__file__).with_name("seccomp_compile.py")

#: refused with EPERM
DENIED: tuple[str, ...] = (
    # kernel interfaces with a long record of privilege escalations, never needed by a job
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "fanotify_init",
    "lookup_dcookie",
    # other processes: the sandbox's pid 1 shares the job's uid
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    # mounts and namespaces
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    # the host as a whole: kernel modules, reboot, clocks, swap, quotas, accounting
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "sethostname",
    "setdomainname",
    "_sysctl",
    "sysfs",
    "ustat",
    "uselib",
    "nfsservctl",
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
)

#: answered ENOSYS, so that the C library falls back to a call the filter can inspect
UNSUPPORTED: tuple[str, ...] = ("clone3",)

#: CLONE_NEW* flags: CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NAMESPACE_FLAGS: tuple[int, ...] = (
    0x00000080,
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)

#: a BPF instruction is 8 bytes; a program holds at most 4096 of them
_INSN = 8
_MAX_INSNS = 4096


def policy() -> dict[str, object]:
    """What the compiler gets on its standard input."""
    # s390 passes clone's flags second (its stack pointer comes first)
    flags_arg = 1 if platform.machine().startswith("s390") else 0
    return {
        "eperm": errno.EPERM,
        "enosys": errno.ENOSYS,
        "deny": list(DENIED),
        "unsupported": list(UNSUPPORTED),
        "clone_flags_arg": flags_arg,
        "clone_namespace_flags": list(CLONE_NAMESPACE_FLAGS),
    }


def build_filter(python: str = SYSTEM_PYTHON, timeout: float = 30.0) -> bytes:
    """The compiled BPF program. Raises :class:`SandboxUnavailable` if it cannot be built."""
    try:
        done = subprocess.run(
            [python, "-I", str(HELPER)],
            input=json.dumps(policy()).encode(),
            capture_output=True,
            timeout=timeout,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise SandboxUnavailable(
            "the system call filter cannot be built (python3-seccomp is needed)"
        ) from e
    program = done.stdout
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        log.error("compiling the seccomp filter failed: %s", said[-1] if said else done.returncode)
    if (
        done.returncode != 0
        or not program
        or len(program) % _INSN
        or len(program) // _INSN > _MAX_INSNS
    ):
        raise SandboxUnavailable(
            "the system call filter cannot be built (python3-seccomp is needed)"
        )
    return program


def program_fd(program: bytes) -> int:
    """A file descriptor holding ``program`` from its start, for bubblewrap's ``--seccomp``
    (close-on-exec: the launcher passes it on explicitly): an anonymous memory file, sealed so
    that nothing can change it."""
    fd = os.memfd_create("atoll-seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        fcntl.fcntl(
            fd,
            fcntl.F_ADD_SEALS,
            fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE,
        )
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    return fd
