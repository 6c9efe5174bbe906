"""What the sandbox needs from its host, found out once before the first job: bubblewrap and
setpriv and the options they have, a shell, the base system a job sees, the compiled system
call filter, a uid range no account of the host uses, and unprivileged user namespaces.

Each check raises :class:`~atoll.engine.executor.SandboxUnavailable` with a sentence that
says what is missing; none of them starts a job (the executor's self-test does that last).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass

from atoll.engine.executor import SandboxUnavailable
from atoll.engine.sandbox.bwrap import HostSystem, probe_host_system, setpriv_argv
from atoll.engine.sandbox.execution import SETUP_LOG_CAP
from atoll.engine.sandbox.ids import UidPool, range_conflicts
from atoll.engine.sandbox.seccomp import build_filter

log = logging.getLogger(__name__)

_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SHELLS = ("/usr/bin/sh", "/bin/sh")
#: statically linked shells an image's job can be started with (Debian's busybox-static)
_STATIC_SHELLS = ("/usr/bin/busybox", "/bin/busybox")
_PT_INTERP = 3
#: the environment of every process the sandbox starts on the host
LAUNCH_ENV = {"PATH": "/usr/bin:/bin"}


@dataclass(frozen=True)
class HostTools:
    """The programs jobs are launched with, resolved to absolute paths, and what they can do."""

    bwrap: str
    setpriv: str
    shell: str
    #: whether bubblewrap has ``--disable-userns`` (a job then cannot nest user namespaces)
    disable_userns: bool
    host: HostSystem
    #: the compiled system call filter of every job
    seccomp: bytes
    #: a statically linked shell for jobs in images; None: image runtimes cannot run here
    image_shell: str | None = None


def is_static_executable(path: str) -> bool:
    """Whether ``path`` is an ELF executable that needs no dynamic loader (no PT_INTERP), so
    that it runs inside an image whatever libraries the image has."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] not in (1, 2):
                return False
            wide = header[4] == 2
            order = "<" if header[5] == 1 else ">"
            if wide:
                (phoff,) = struct.unpack_from(order + "Q", header, 32)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
            else:
                (phoff,) = struct.unpack_from(order + "I", header, 28)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    if phnum == 0 or len(table) < phentsize * phnum:
        return False
    for index in range(phnum):
        (kind,) = struct.unpack_from(order + "I", table, index * phentsize)
        if kind == _PT_INTERP:
            return False
    return True


def probe_image_shell() -> str | None:
    """The host's statically linked shell, for jobs that run in images; None if it has none."""
    for candidate in _STATIC_SHELLS:
        real = os.path.realpath(candidate)
        if os.access(real, os.X_OK) and is_static_executable(real):
            return real
    return None


def resolve_program(program: str, missing: str) -> str:
    """The absolute path of an executable ``program``; SandboxUnavailable(``missing``) if
    there is none."""
    if "/" in program:
        path: str | None = os.path.abspath(program)
    else:
        path = shutil.which(program, path=_SEARCH_PATH)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise SandboxUnavailable(missing)
    return path


def probe_tools(bwrap: str, setpriv: str, seccomp_python: str) -> HostTools:
    """Resolve and check bubblewrap, setpriv and the shell; compile the system call filter."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox needs root to create cgroups and mounts")
    bwrap_path = resolve_program(bwrap, "bubblewrap is not installed")
    setpriv_path = resolve_program(
        setpriv,
        "setpriv (util-linux) is not installed; jobs cannot be run as an unprivileged user",
    )
    try:
        helped = subprocess.run(
            [bwrap_path, "--help"], capture_output=True, timeout=30, env=LAUNCH_ENV, check=False
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise SandboxUnavailable("bubblewrap cannot be run") from e
    usage = helped.stdout.decode(errors="replace") + helped.stderr.decode(errors="replace")
    if "--size" not in usage or "--remount-ro" not in usage:
        raise SandboxUnavailable("the installed bubblewrap is too old; 0.8 or newer is needed")
    shell = next((s for s in _SHELLS if os.access(s, os.X_OK)), None)
    if shell is None:
        raise SandboxUnavailable("no POSIX shell is installed")
    host = probe_host_system()
    if "--seccomp" not in usage:
        raise SandboxUnavailable("the installed bubblewrap cannot apply a seccomp filter")
    return HostTools(
        bwrap=bwrap_path,
        setpriv=setpriv_path,
        shell=shell,
        disable_userns="--disable-userns" in usage,
        host=host,
        seccomp=build_filter(seccomp_python),
        image_shell=probe_image_shell(),
    )


def check_uid_range(pool: UidPool) -> None:
    """The job uids belong to no account of the host, and their reservations can be kept."""
    first, last = pool.first, pool.last
    clashes = range_conflicts(first, last)
    if clashes:
        raise SandboxUnavailable(
            f"the user ids for jobs ({first}-{last}) overlap ids the host gives to "
            + " and ".join(clashes)
            + "; choose another range"
        )
    try:
        pool.prepare()
    except OSError as e:
        raise SandboxUnavailable("cannot prepare the reservations of job user ids") from e


def probe_nproc_flag(shell: str) -> str:
    """The shell's ulimit option for RLIMIT_NPROC: shells disagree (``-u`` in bash, ``-p``
    in dash, where bash's ``-p`` is the pipe size), so the one that sets it is found by
    trying."""
    probe = 4000 + os.getpid() % 1000
    for flag in ("-u", "-p"):
        try:
            done = subprocess.run(
                [shell, "-c", f"ulimit {flag} {probe} && exec cat /proc/self/limits"],
                capture_output=True,
                timeout=30,
                env=LAUNCH_ENV,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        for line in done.stdout.decode(errors="replace").splitlines():
            if line.startswith("Max processes") and line.split()[2:4] == [str(probe)] * 2:
                return flag
    raise SandboxUnavailable("the shell cannot limit the number of a job's processes")


def check_userns(tools: HostTools, pool: UidPool | None, uid: int, gid: int) -> None:
    """bubblewrap, as an unprivileged uid, can make its namespaces: the kernel may forbid
    unprivileged user namespaces (a sysctl, or an LSM policy)."""
    claim = pool.claim() if pool is not None else None
    if claim is not None:
        uid, gid = claim.uid, claim.uid
    host = tools.host
    argv = [
        *setpriv_argv(tools.setpriv, uid, gid),
        tools.bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        # the base system only, as jobs get it: a recursive bind of "/" would remount every
        # mount of the host, and fail when another job's mounts go away meanwhile
        "--ro-bind",
        host.usr,
        host.usr,
        *(a for target, link in host.links for a in ("--symlink", target, link)),
        *(a for d in host.dirs for a in ("--ro-bind", d, d)),
        "--",
        tools.shell,
        "-c",
        ":",
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=30, env=LAUNCH_ENV, check=False, cwd="/"
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise SandboxUnavailable("bubblewrap cannot be run as an unprivileged user") from e
    finally:
        if claim is not None:
            claim.release()
    if done.returncode != 0:
        log.error(
            "bubblewrap as an unprivileged user: %s",
            done.stderr[:SETUP_LOG_CAP].decode(errors="replace"),
        )
        raise SandboxUnavailable(
            "unprivileged user namespaces are not available on this host; jobs cannot be "
            "run as an unprivileged user"
        )
