"""An entrypoint is split like shell words, and its command found on the image's PATH with
every link followed inside the image, never on the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoll.images.command import (
    EntrypointInvalid,
    entrypoint_argv,
    find_command,
    resolve_in_root,
)

ALGO = "/data/transformations/algorithm"


def test_the_entrypoint_is_split_like_shell_words_and_algo_replaced() -> None:
    assert entrypoint_argv("python3 $ALGO", ALGO) == ["python3", ALGO]
    assert entrypoint_argv("node  --file=$ALGO 'a b' \"$HOME\"", ALGO) == [
        "node",
        f"--file={ALGO}",
        "a b",
        "$HOME",  # no shell: nothing else is expanded
    ]
    assert entrypoint_argv("sh -c 'rm -rf /; echo' ; ls", ALGO) == [
        "sh", "-c", "rm -rf /; echo", ";", "ls"
    ]  # fmt: skip


@pytest.mark.parametrize("entrypoint", ["", "   ", "python3 '$ALGO", "a\0b", "'' $ALGO"])
def test_an_entrypoint_that_cannot_run_is_refused(entrypoint: str) -> None:
    with pytest.raises(EntrypointInvalid):
        entrypoint_argv(entrypoint, ALGO)


def _executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/false\n")
    path.chmod(0o755)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    _executable(root / "usr/bin/python3.11")
    os.symlink("python3.11", root / "usr/bin/python3")
    os.symlink("usr/bin", root / "bin")
    (root / "usr/bin/data.txt").write_text("not executable")
    return root


def test_a_command_is_found_on_the_images_path(image: Path) -> None:
    assert find_command(image, "python3", "/usr/local/bin:/usr/bin") == "/usr/bin/python3"
    assert find_command(image, "python3", "/bin") == "/bin/python3"  # through the bin link
    assert find_command(image, "/usr/bin/python3.11") == "/usr/bin/python3.11"
    assert find_command(image, "data.txt", "/usr/bin") is None  # not executable
    assert find_command(image, "node") is None
    assert find_command(image, "./python3") is None  # relative to the job's directory
    assert find_command(image, "python3", "relative/bin") is None


def test_links_are_followed_inside_the_image_not_on_the_host(image: Path, tmp_path: Path) -> None:
    # on the host, /usr/bin/env exists; in this image it does not
    os.symlink("/usr/bin/env", image / "usr/bin/hostenv")
    os.symlink("../../../../../../../usr/bin/env", image / "usr/bin/climber")
    assert find_command(image, "hostenv", "/usr/bin") is None
    assert find_command(image, "climber", "/usr/bin") is None
    # an absolute link resolves inside the image
    os.symlink("/usr/bin/python3.11", image / "usr/bin/py")
    assert find_command(image, "py", "/usr/bin") == "/usr/bin/py"
    assert resolve_in_root(image, "/usr/bin/py") == image / "usr/bin/python3.11"
    assert resolve_in_root(image, "/../../usr/bin/python3") == image / "usr/bin/python3.11"


def test_a_link_loop_is_not_followed_forever(image: Path) -> None:
    os.symlink("b", image / "usr/bin/a")
    os.symlink("a", image / "usr/bin/b")
    assert resolve_in_root(image, "/usr/bin/a") is None
    assert find_command(image, "a", "/usr/bin") is None
