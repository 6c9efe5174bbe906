"""The whole path a job takes: a real registry, a real Debian image, pulled by digest,
verified, scanned, unpacked with umoci and cached; hostile images refused by name."""

from __future__ import annotations

import logging
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from atoll.images import errors
from atoll.images.access import RegistryAccess
from atoll.images.pull import ImagePuller, PulledImage
from atoll.images.reference import ImageReference
from atoll.images.store import ImageStore
from tests.images.conftest import PushedImage, Registry
from tests.images.oci import entry, image_of

MB = 1 << 20


def store_for(registry: Registry, tmp_path: Path, cache_mb: int = 512) -> ImageStore:
    return ImageStore([registry.access()], tmp_path / "cache", cache_bytes=cache_mb * MB)


def test_a_debian_image_is_pulled_by_digest_and_unpacked(
    registry: Registry, debian_image: PushedImage, tmp_path: Path
) -> None:
    store = store_for(registry, tmp_path)
    stages: list[tuple[str, int, int]] = []
    reference = ImageReference.parse(debian_image.reference(registry))
    with store.acquire(reference, lambda s, d, t: stages.append((s, d, t))) as image:
        python = image.rootfs / "usr/bin/python3"
        assert python.is_symlink() or python.is_file()
        assert (image.rootfs / "usr/lib/python3.11/os.py").is_file()
        assert image.digest == debian_image.digest
        assert image.info["config"]["cmd"] == ["python3"]
        assert image.size > 10 * MB
    pulling = [s for s in stages if s[0] == "pulling"]
    assert pulling[0][1] == 0 and pulling[-1][1] == pulling[-1][2] > 0
    assert stages[-1][0] == "unpacking"


def test_the_credentials_reach_no_log_and_no_file_of_the_image(
    registry: Registry,
    debian_image: PushedImage,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = store_for(registry, tmp_path)
    reference = ImageReference.parse(debian_image.reference(registry))
    with store.acquire(reference) as image:
        for path in image.rootfs.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert registry.password.encode() not in path.read_bytes(), path
    assert registry.password not in caplog.text
    assert registry.password not in repr(store.puller.__dict__)


HOSTILE = {
    "parent-path": ([[entry("../../escaped", data=b"x")]], errors.ParentPathEntry),
    "absolute-path": ([[entry("/escaped", data=b"x")]], errors.AbsolutePathEntry),
    "symlink-out": (
        [[entry("evil", tarfile.SYMTYPE, linkname="../../..")], [entry("evil/escaped", data=b"x")]],
        errors.SymlinkTraversal,
    ),
    "hardlink-out": (
        [[entry("linked", tarfile.LNKTYPE, linkname="../../outside/secret")]],
        errors.HardLinkEscape,
    ),
    "device": ([[entry("dev/null", tarfile.CHRTYPE)]], errors.DeviceEntry),
    "whiteout-out": ([[entry("etc/.wh..")]], errors.WhiteoutEscape),
    "bomb": ([[entry("zeros", data=bytes(48 * MB))]], errors.ImageTooLarge),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_image_fails_by_name_and_writes_nothing_outside(
    registry: Registry, tmp_path: Path, case: str
) -> None:
    layers, error = HOSTILE[case]
    digest = registry.pusher.image(f"hostile/{case}", image_of(*layers))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    store = ImageStore(
        [registry.access()],
        tmp_path / "cache",
        cache_bytes=32 * MB,  # the bomb's 48 MiB of zeros gzip to under 100 KiB
    )
    before = sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts)
    reference = ImageReference.parse(f"{registry.host}/hostile/{case}@{digest}")
    with pytest.raises(error) as caught, store.acquire(reference):
        pass
    assert caught.value.code == error.code
    assert sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts) == before
    assert (outside / "secret").read_text() == "keep"
    assert (outside / "secret").stat().st_nlink == 1
    assert not list((tmp_path / "cache/entries").iterdir())
    assert not list((tmp_path / "cache/work").iterdir())


def test_set_id_bits_do_not_survive(registry: Registry, tmp_path: Path) -> None:
    image = image_of([entry("usr/bin/su", data=b"x", mode=0o4755), entry("bin/g", mode=0o2711)])
    digest = registry.pusher.image("tests/setuid", image)
    reference = ImageReference.parse(f"{registry.host}/tests/setuid@{digest}")
    with store_for(registry, tmp_path).acquire(reference) as cached:
        modes = [os.lstat(cached.rootfs / p).st_mode for p in ("usr/bin/su", "bin/g")]
    assert all(not mode & (stat.S_ISUID | stat.S_ISGID) for mode in modes)


class CountingPuller(ImagePuller):
    def __init__(self, registries: list[RegistryAccess]) -> None:
        super().__init__(registries)
        self.pulls = 0
        self.lock = threading.Lock()

    def pull(self, *args: object, **kwargs: object) -> PulledImage:
        with self.lock:
            self.pulls += 1
        return super().pull(*args, **kwargs)  # type: ignore[arg-type]


def test_two_jobs_pulling_one_image_at_once_pull_it_once(
    registry: Registry, tmp_path: Path
) -> None:
    layers = [[entry(f"lib/f{i}", data=os.urandom(64 << 10)) for i in range(16)]]
    digest = registry.pusher.image("tests/shared", image_of(*layers))
    puller = CountingPuller([registry.access()])
    stores = [
        ImageStore([], tmp_path / "cache", cache_bytes=64 * MB, puller=puller) for _ in range(2)
    ]
    reference = ImageReference.parse(f"{registry.host}/tests/shared@{digest}")
    start = threading.Barrier(2)
    roots: list[Path] = []
    failures: list[BaseException] = []

    def job(store: ImageStore) -> None:
        try:
            start.wait(10)
            with store.acquire(reference) as image:
                roots.append(image.rootfs)
                assert len(list((image.rootfs / "lib").iterdir())) == 16
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=job, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert puller.pulls == 1
    assert len(roots) == 2 and roots[0] == roots[1]


def test_images_are_evicted_least_recently_used_first(registry: Registry, tmp_path: Path) -> None:
    digests = [
        registry.pusher.image(f"tests/lru{i}", image_of([entry("f", data=os.urandom(MB))]))
        for i in range(3)
    ]
    references = [
        ImageReference.parse(f"{registry.host}/tests/lru{i}@{d}") for i, d in enumerate(digests)
    ]
    puller = CountingPuller([registry.access()])
    # room for two of the three images, not for three
    store = ImageStore([], tmp_path / "cache", cache_bytes=2 * MB + MB // 2, puller=puller)
    for reference in (references[0], references[1], references[0], references[2]):
        with store.acquire(reference):
            pass
    assert puller.pulls == 3  # the first image was still cached when used again
    assert store.cache.contains(digests[0]) and store.cache.contains(digests[2])
    assert not store.cache.contains(digests[1])
    assert store.cache.total_bytes() <= 2 * MB + MB // 2
