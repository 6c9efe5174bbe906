"""What an image runs: its entrypoint as an argument vector, and a command found inside an
unpacked image the way its own ``PATH`` would find it.

The entrypoint is split like shell words (``shlex``) and never given to a shell, so quotes
group words and nothing else is interpreted; ``$ALGO`` stands for the algorithm's path inside
the job. The lookup reads the image's tree from the host: every symbolic link is followed
inside the image's root, as the job would see it, never on the host.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections import deque
from pathlib import Path

from atoll.images.errors import ImageError

ALGO = "$ALGO"
#: symbolic links followed in one lookup, as Linux's own limit
MAX_LINKS = 40
#: where a command is looked for when the image's configuration sets no PATH
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EntrypointInvalid(ImageError):
    """An entrypoint that cannot be run: empty, unbalanced quotes, a NUL."""

    code = "image-entrypoint-invalid"
    status_code = 400


def entrypoint_argv(entrypoint: str, algorithm: str) -> list[str]:
    """The words of ``entrypoint`` with ``$ALGO`` replaced by ``algorithm``."""
    if "\0" in entrypoint:
        raise EntrypointInvalid("an image's entrypoint holds a NUL character")
    try:
        words = shlex.split(entrypoint)
    except ValueError:
        raise EntrypointInvalid("an image's entrypoint has unbalanced quotes") from None
    if not words or not words[0]:
        raise EntrypointInvalid("an image's entrypoint names no command")
    return [word.replace(ALGO, algorithm) for word in words]


def resolve_in_root(root: Path, path: str) -> Path | None:
    """The host path of what ``path`` (absolute, as the job names it) is inside ``root``,
    following symbolic links inside ``root`` only; None if it does not exist or loops."""
    pending = deque(path.split("/"))
    resolved: list[str] = []
    links = 0
    while pending:
        name = pending.popleft()
        if name in ("", "."):
            continue
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        # every part of ``resolved`` is a real directory of the tree: no link is crossed here
        candidate = root.joinpath(*resolved, name)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            links += 1
            if links > MAX_LINKS:
                return None
            try:
                target = os.readlink(candidate)
            except OSError:
                return None
            if target.startswith("/"):
                resolved = []
            pending.extendleft(reversed(target.split("/")))
            continue
        if pending and not stat.S_ISDIR(mode):
            return None
        resolved.append(name)
    return root.joinpath(*resolved)


def _executable(host_path: Path | None) -> bool:
    if host_path is None:
        return False
    try:
        mode = os.lstat(host_path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & 0o111)


def find_command(root: Path, command: str, search_path: str = DEFAULT_PATH) -> str | None:
    """Where the job finds ``command`` in the image at ``root``: itself if it is an absolute
    path, else the first executable file of that name on ``search_path``; None if the image
    has none, or ``command`` is a relative path (it would name a file of the job's working
    directory, not of the image). The answer is a path inside the image."""
    if "/" in command:
        ok = command.startswith("/") and _executable(resolve_in_root(root, command))
        return command if ok else None
    for directory in search_path.split(":"):
        if not directory.startswith("/"):
            continue  # a relative PATH entry would depend on the working directory
        inside = f"{directory.rstrip('/')}/{command}"
        if _executable(resolve_in_root(root, inside)):
            return inside
    return None
