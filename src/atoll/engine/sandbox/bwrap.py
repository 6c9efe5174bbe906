"""The command line that starts a job: a POSIX shell (root) that joins the job's cgroups and
sets its rlimits, then execs ``setpriv``, which drops to the job's unprivileged host uid and
execs bubblewrap, which runs a second shell inside the sandbox that signals "ready" and execs
the interpreter. For a job with egress, that second shell first starts the forwarder to the
engine's proxy.

Everything here is pure (no processes, no files written) so that it can be checked without a
kernel that supports any of it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from atoll.engine.executor import ExecutionSpec, Limits, SandboxUnavailable
from atoll.engine.sandbox.cgroups import max_pids

#: written by the shell inside the sandbox once bubblewrap has set everything up; anything
#: else on that channel before it is an error from bubblewrap or the launcher
READY = b"ATOLL-SANDBOX-READY\n"

INSIDE_OUTPUTS = "/data/outputs"
INSIDE_LOGS = "/data/logs"
HOSTNAME = "sandbox"
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}

#: dash counts ``ulimit -f`` in 512-byte blocks
FSIZE_BLOCK = 512

#: fd 2 of the inner shell is the setup channel: announce readiness on it, then point it at
#: the log pipe (fd 1) so the job's stderr and stdout both reach the log
INNER_SCRIPT = f'echo {READY.decode().strip()} >&2 && exec 2>&1 && exec "$@"'

#: where a job with egress finds the proxy's socket directory and the forwarder
INSIDE_EGRESS_DIR = "/run/atoll/egress"
INSIDE_FORWARDER = "/run/atoll/forwarder.py"
PROXY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
#: said on the setup channel when the forwarder did not start, to tell that failure apart
EGRESS_FAILED = b"ATOLL-EGRESS-FAILED"


@dataclass(frozen=True)
class Egress:
    """The host side of a job's egress: the directory holding the proxy's socket, and the
    forwarder script."""

    socket_dir: Path
    socket_name: str
    forwarder: Path


def proxy_env() -> dict[str, str]:
    # Both spellings: tools disagree on which one they read. An empty NO_PROXY keeps a
    # loopback destination from bypassing the proxy, which would fail anyway.
    env = {name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    env.update({"NO_PROXY": "", "no_proxy": ""})
    return env


def egress_inner_script(job_id: str, socket_name: str) -> str:
    """The inner shell for a job with egress: start the forwarder ("$1" is the job's
    interpreter) and go on only once it listens, which its exit status says."""
    forwarder = " ".join(
        shlex.quote(a)
        for a in (
            INSIDE_FORWARDER,
            f"{INSIDE_EGRESS_DIR}/{socket_name}",
            str(PROXY_PORT),
            job_id,
        )
    )
    failed = EGRESS_FAILED.decode()
    return f'"$1" -I -S {forwarder} || {{ echo {failed} >&2; exit 125; }}; {INNER_SCRIPT}'


#: the shell that starts an image's job: the host's static shell, the one host file an image
#: runtime sees (an image may have no shell, or one that runs differently)
INSIDE_SHELL = "/run/atoll/sh"
#: top-level names of an image that the sandbox provides itself
RESERVED_TOP = frozenset({"data", "dev", "proc", "run", "sys", "tmp"})


@dataclass(frozen=True)
class ImageRoot:
    """An image runtime's file system as bubblewrap builds it: each top-level entry of the
    image (``name``, ``kind``: "dir", "file" or "link", and a link's target) bound read-only
    from the image's tree, and ``shell``, a statically linked host shell."""

    entries: tuple[tuple[str, str, str], ...]
    shell: Path


def image_root_entries(root: Path) -> tuple[tuple[str, str, str], ...]:
    """The top-level entries of an unpacked image that a job sees (the sandbox's own
    ``/proc``, ``/dev``, ``/tmp``, ``/run``, ``/data`` replace the image's). Reads ``root``
    without following a link."""
    found: list[tuple[str, str, str]] = []
    with os.scandir(root) as listing:
        for entry in listing:
            if entry.name in RESERVED_TOP:
                continue
            if entry.is_symlink():
                found.append((entry.name, "link", os.readlink(entry.path)))
            elif entry.is_dir(follow_symlinks=False):
                found.append((entry.name, "dir", ""))
            elif entry.is_file(follow_symlinks=False):
                found.append((entry.name, "file", ""))
    return tuple(sorted(found))


@dataclass(frozen=True)
class HostSystem:
    """The parts of the host's base system a job gets, read-only: ``/usr``, the top-level
    ``/bin``-style links into it (or directories, where ``/usr`` is not merged) and the
    dynamic linker's cache."""

    usr: str = "/usr"
    #: (link target, link path), e.g. ("usr/bin", "/bin")
    links: tuple[tuple[str, str], ...] = ()
    dirs: tuple[str, ...] = ()
    ld_cache: str | None = "/etc/ld.so.cache"


def probe_host_system() -> HostSystem:
    links: list[tuple[str, str]] = []
    dirs: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            links.append((os.readlink(path), path))
        elif os.path.isdir(path):
            dirs.append(path)
    ld_cache = "/etc/ld.so.cache" if os.path.isfile("/etc/ld.so.cache") else None
    return HostSystem(links=tuple(links), dirs=tuple(dirs), ld_cache=ld_cache)


def fsize_blocks(nbytes: int) -> int:
    # Rounded down, so the cap never exceeds what was asked for.
    return max(1, nbytes // FSIZE_BLOCK)


def launcher_script(
    procs_files: Sequence[Path], limits: Limits, *, nproc_flag: str | None = None
) -> str:
    """The outer shell: join every job cgroup, set the rlimits, exec the rest ("$@": setpriv
    and bubblewrap).

    The CPU rlimit's hard value is one second above the soft one so the job first gets
    SIGXCPU (which tells a CPU-time kill apart from other SIGKILLs) and SIGKILL a second
    later if it ignores that. Core dumps are off: the kernel writes them outside the
    sandbox's view (the host's core_pattern, possibly a host program).

    ``nproc_flag`` is the shell's ``ulimit`` option for RLIMIT_NPROC (``-u`` in bash, ``-p``
    in dash); given, the job's uid may have as many processes as its cgroup. That limit
    counts every process of the uid on the host, so it is set only when no other job shares
    the uid.
    """
    cpu = max(1, limits.cpu_seconds)
    steps = [f"echo $$ >{shlex.quote(str(f))}" for f in procs_files]
    steps += [
        "ulimit -c 0",
        f"ulimit -t {cpu + 1}",
        f"ulimit -S -t {cpu}",
        f"ulimit -f {fsize_blocks(limits.file_size_bytes)}",
    ]
    if nproc_flag is not None:
        steps.append(f"ulimit {nproc_flag} {max_pids(limits)}")
    steps.append('exec "$@"')
    return " && ".join(steps)


def setpriv_argv(setpriv: str, uid: int, gid: int) -> list[str]:
    """Become ``uid``:``gid`` with no supplementary groups and no capabilities left to regain
    (none inheritable, an empty bounding set, no new privileges through exec)."""
    return [
        setpriv,
        "--reuid",
        str(uid),
        "--regid",
        str(gid),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _check_env(env: dict[str, str]) -> None:
    for key in env:
        if not key or "=" in key or "\0" in key or "\0" in env[key]:
            raise SandboxUnavailable("the job's environment has an invalid variable")


def bwrap_argv(
    bwrap: str,
    spec: ExecutionSpec,
    *,
    shell: str,
    host: HostSystem,
    uid: int = 65534,
    gid: int = 65534,
    tmp_bytes: int = 64 * 1024**2,
    disable_userns: bool = True,
    egress: Egress | None = None,
    source: Callable[[Path], str] = str,
    seccomp_fd: int | None = None,
    image: ImageRoot | None = None,
) -> list[str]:
    """bubblewrap's argv. ``uid`` and ``gid`` are the ids the job sees inside. ``source``
    maps each host path that is the job's own (runtime paths, mounts, outputs, logs, egress,
    devices, an image's root and shell) to where bubblewrap should take it from: the job's
    staging directory, since bubblewrap runs as the job's uid. ``seccomp_fd`` is an inherited
    descriptor holding the job's system call filter (see :mod:`atoll.engine.sandbox.seccomp`).
    With ``image`` (for a runtime with a ``root``), the job's file system is the image's
    instead of the host's ``/usr``."""
    argv = [
        bwrap,
        # Each namespace named on its own: --unshare-all only *tries* the user and cgroup
        # namespaces and would carry on without them.
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup",
    ]
    if disable_userns:
        argv.append("--disable-userns")
    argv += [
        "--uid",
        str(uid),
        "--gid",
        str(gid),
        "--hostname",
        HOSTNAME,
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    env = dict(BASE_ENV)
    env.update(spec.env)
    if egress is not None:
        env.update(proxy_env())
    _check_env(env)
    for key, value in env.items():
        argv += ["--setenv", key, value]

    # The fresh /proc, /dev and /tmp come first so that a runtime path or an input that lives
    # under the host's /tmp is mounted over the job's /tmp rather than hidden by it.
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    root = spec.runtime.root
    if root is not None:
        if image is None:
            raise SandboxUnavailable("the image's root was not prepared")
        # bubblewrap's tmpfs stays the root, so that /data and the rest can be made in it;
        # the image's own entries are bound into it one by one
        staged_root = source(root)
        for name, kind, target in image.entries:
            if kind == "link":
                argv += ["--symlink", target, "/" + name]
            else:
                argv += ["--ro-bind", f"{staged_root}/{name}", "/" + name]
        argv += ["--ro-bind", source(image.shell), INSIDE_SHELL]
        shell = INSIDE_SHELL
    else:
        argv += ["--ro-bind", host.usr, host.usr]
        for target, link in host.links:
            argv += ["--symlink", target, link]
        for d in host.dirs:
            argv += ["--ro-bind", d, d]
        if host.ld_cache:
            argv += ["--ro-bind", host.ld_cache, host.ld_cache]
        for p in spec.runtime.paths:
            argv += ["--ro-bind", source(p), str(p)]
    for m in spec.mounts:
        argv += ["--bind" if m.writable else "--ro-bind", source(m.source), m.target]
    argv += ["--bind", source(spec.outputs_dir), INSIDE_OUTPUTS]
    argv += ["--bind", source(spec.logs_dir), INSIDE_LOGS]
    argv += ["--dir", spec.workdir]
    if egress is not None:
        argv += ["--ro-bind", source(egress.socket_dir), INSIDE_EGRESS_DIR]
        argv += ["--ro-bind", source(egress.forwarder), INSIDE_FORWARDER]
    # After --dev, so that a node under /dev lands in the job's /dev; -try, so that a node
    # the host lacks (a GPU that went away) is skipped rather than failing the start.
    for d in spec.devices:
        argv += ["--dev-bind-try", source(Path(d)), d]
    # bubblewrap's own / and /dev are tmpfs without a size cap, writable by the job's uid:
    # both become read-only so the capped mounts are the only places to write. /proc too, so
    # that no sysctl is writable whatever the kernel's checks on it are.
    argv += ["--remount-ro", "/", "--remount-ro", "/dev", "--remount-ro", "/proc"]
    argv += ["--chdir", spec.workdir]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    inner = INNER_SCRIPT
    if egress is not None:
        inner = egress_inner_script(spec.job_id, egress.socket_name)
    argv += ["--", shell, "-c", inner, "atoll-job", str(spec.runtime.interpreter)]
    argv += list(spec.args)
    return argv
