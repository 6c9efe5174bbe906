"""The engine's side of a job in an image, piece by piece: the status each failure ends a job
with, the pull's progress as status texts, the image's environment, and bubblewrap's command
line for an image root (nothing of the host's system bound)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoll.engine.executor import ExecutionSpec, Mount, Runtime
from atoll.engine.image_runtime import (
    ImageCommandMissing,
    NoImageStore,
    PullProgress,
    PullStopped,
    image_env,
    image_run,
    image_status,
    progress_text,
)
from atoll.engine.sandbox.bwrap import (
    INSIDE_SHELL,
    HostSystem,
    ImageRoot,
    bwrap_argv,
    image_root_entries,
)
from atoll.images import errors
from atoll.images.allow import ImageNotAllowed
from atoll.images.cache import CachedImage
from atoll.images.command import EntrypointInvalid
from atoll.models.job import ContainerRun
from atoll.models.status import JobStatus

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ImageNotAllowed, JobStatus.IMAGE_NOT_ALLOWED),
        (errors.RegistryNotAllowed, JobStatus.IMAGE_NOT_ALLOWED),
        (errors.ImageReferenceInvalid, JobStatus.IMAGE_NOT_ALLOWED),
        (NoImageStore, JobStatus.IMAGE_NOT_ALLOWED),
        (errors.RegistryUnavailable, JobStatus.IMAGE_PULL_FAILED),
        (errors.ImageNotFound, JobStatus.IMAGE_PULL_FAILED),
        (errors.DigestMismatch, JobStatus.IMAGE_PULL_FAILED),
        (errors.UnsupportedImage, JobStatus.IMAGE_PULL_FAILED),
        (errors.ParentPathEntry, JobStatus.IMAGE_REFUSED),
        (errors.AbsolutePathEntry, JobStatus.IMAGE_REFUSED),
        (errors.SymlinkTraversal, JobStatus.IMAGE_REFUSED),
        (errors.HardLinkEscape, JobStatus.IMAGE_REFUSED),
        (errors.DeviceEntry, JobStatus.IMAGE_REFUSED),
        (errors.WhiteoutEscape, JobStatus.IMAGE_REFUSED),
        (errors.MalformedLayer, JobStatus.IMAGE_REFUSED),
        (errors.UnpackFailed, JobStatus.IMAGE_REFUSED),
        (errors.ImageTooLarge, JobStatus.IMAGE_TOO_LARGE),
        (errors.CacheFull, JobStatus.IMAGE_CACHE_FULL),
        (EntrypointInvalid, JobStatus.ALGORITHM_PROVISIONING_FAILED),
        (ImageCommandMissing, JobStatus.ALGORITHM_PROVISIONING_FAILED),
    ],
)
def test_each_image_failure_has_its_status(
    error: type[errors.ImageError], status: JobStatus
) -> None:
    assert image_status(error("why")) is status
    assert status.terminal
    assert 11 <= status <= 19 or status is JobStatus.ALGORITHM_PROVISIONING_FAILED


def test_pulling_is_not_an_end() -> None:
    assert not JobStatus.PULLING_IMAGE.terminal
    assert JobStatus.PULLING_IMAGE < JobStatus.CONFIGURING


def test_progress_is_written_at_most_once_an_interval_and_at_each_stage() -> None:
    said: list[str] = []
    progress = PullProgress(said.append, lambda: False, interval=3600)
    progress("pulling", 0, 5_000_000)
    progress("pulling", 1_000_000, 5_000_000)  # too soon: not written
    progress("unpacking", 0, 0)  # a new stage always is
    assert said == ["Pulling image: 0.0 of 5.0 MB", "Unpacking image"]
    assert progress.reported
    assert progress_text("pulling", 1_500_000, 0) == "Pulling image: 1.5 MB"


def test_a_stop_ends_the_pull() -> None:
    stopped = [False]
    progress = PullProgress(lambda _: None, lambda: stopped[0], interval=0)
    progress("pulling", 0, 10)
    stopped[0] = True
    with pytest.raises(PullStopped):
        progress("pulling", 5, 10)


def _image(root: Path, env: list[object]) -> CachedImage:
    return CachedImage(DIGEST, root, 1, {"config": {"env": env}})


def test_the_images_environment_less_what_the_sandbox_sets(tmp_path: Path) -> None:
    env = ["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8", "HOME=/root", "HTTPS_PROXY=http://x",
           "bad name=1", "NOVALUE", 3, "A=b=c", "Z=\0"]  # fmt: skip
    assert image_env(_image(tmp_path, env)) == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "A": "b=c",
    }
    assert image_env(CachedImage(DIGEST, tmp_path, 1, {})) == {}


def test_the_entrypoint_runs_the_command_found_on_the_images_path(tmp_path: Path) -> None:
    python = tmp_path / "opt/py/bin/python3"
    python.parent.mkdir(parents=True)
    python.write_text("")
    python.chmod(0o755)
    image = _image(tmp_path, ["PATH=/opt/py/bin"])
    run = image_run(image, ContainerRun(image=f"r.example/x@{DIGEST}", entrypoint="python3 $ALGO"))
    assert run.runtime == Runtime(Path("/opt/py/bin/python3"), root=tmp_path)
    assert run.args == ["/data/transformations/algorithm"]
    with pytest.raises(ImageCommandMissing):
        image_run(_image(tmp_path, []), ContainerRun(image="r.example/x", entrypoint="python3"))


def test_bwrap_binds_the_image_and_nothing_of_the_hosts_system(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    for d in ("usr/bin", "etc", "proc", "data", "tmp", "sys", "run", "dev"):
        (root / d).mkdir(parents=True)
    os.symlink("usr/bin", root / "bin")
    (root / "marker").write_text("")
    entries = image_root_entries(root)
    assert entries == (("bin", "link", "usr/bin"), ("etc", "dir", ""), ("marker", "file", ""),
                       ("usr", "dir", ""))  # fmt: skip
    spec = ExecutionSpec(
        job_id="j1",
        runtime=Runtime(Path("/usr/bin/python3"), root=root),
        args=["/data/transformations/algorithm"],
        mounts=[Mount(Path("/srv/in"), "/data/inputs/x/0")],
        env={},
        outputs_dir=tmp_path / "out",
        logs_dir=tmp_path / "logs",
    )
    host = HostSystem(links=(("usr/lib", "/lib"),), dirs=("/lib64",))
    staged = {root: "/stage/1", Path("/bin/busybox"): "/stage/2"}
    argv = bwrap_argv(
        "bwrap",
        spec,
        shell="/bin/sh",
        host=host,
        source=lambda p: staged.get(p, str(p)),
        image=ImageRoot(entries, Path("/bin/busybox")),
    )
    end = argv.index("--")
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv[:end]) if a == "--ro-bind"]
    assert ("/stage/1/usr", "/usr") in binds and ("/stage/1/etc", "/etc") in binds
    assert ("/stage/2", INSIDE_SHELL) in binds
    assert not any(source in ("/usr", "/lib64", "/etc/ld.so.cache") for source, _ in binds)
    assert argv[argv.index("--symlink") : argv.index("--symlink") + 3] == [
        "--symlink",
        "usr/bin",
        "/bin",
    ]
    assert "/lib" not in argv[:end]
    assert argv[end + 1 : end + 3] == [INSIDE_SHELL, "-c"]
    assert argv[-2:] == ["/usr/bin/python3", "/data/transformations/algorithm"]
    # the root stays bubblewrap's own tmpfs, made read-only once everything is in it
    assert argv[argv.index("--remount-ro") + 1] == "/"
