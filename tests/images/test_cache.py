"""The image cache: built once per digest even when asked twice at once, least recently used
images evicted first, images in use never, and the cap kept."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from atoll.images import errors
from atoll.images.cache import ImageCache

KB = 1024


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


class Builder:
    """Builds trees of a given size, counting builds per digest."""

    def __init__(self) -> None:
        self.builds: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, n: int, size: int) -> Any:
        def build(work: Path, max_bytes: int) -> tuple[Path, int, dict[str, Any]]:
            self.builds.append(n)
            self.gate.wait(30)
            tree = work / "tree"
            tree.mkdir()
            (tree / "content").write_bytes(bytes(size))
            return tree, size, {"n": n}

        return build


def test_an_image_is_built_once_and_then_served(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 100 * KB), Builder()
    with cache.acquire(digest(1), builder(1, KB)) as first:
        assert (first.rootfs / "content").stat().st_size == KB
        assert first.info["n"] == 1
    with cache.acquire(digest(1), builder(1, KB)) as again:
        assert again.rootfs == first.rootfs
    assert builder.builds == [1]
    assert not list((tmp_path / "work").iterdir())


def test_two_pullers_of_one_image_build_it_once(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 100 * KB), Builder()
    builder.gate.clear()
    roots: list[Path] = []

    def use() -> None:
        with cache.acquire(digest(7), builder(7, KB)) as image:
            roots.append(image.rootfs)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    while not builder.builds:
        threading.Event().wait(0.01)
    builder.gate.set()
    for thread in threads:
        thread.join(30)
    assert builder.builds == [7]
    assert len(roots) == 3 and len(set(roots)) == 1


def test_the_least_recently_used_image_goes_first(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 30 * KB), Builder()
    for n in (1, 2):
        with cache.acquire(digest(n), builder(n, 10 * KB)):
            pass
    with cache.acquire(digest(1), builder(1, 10 * KB)):
        pass  # 1 is now more recent than 2
    with cache.acquire(digest(3), builder(3, 20 * KB)):
        pass
    assert cache.contains(digest(1)) and cache.contains(digest(3))
    assert not cache.contains(digest(2))
    assert cache.total_bytes() <= 30 * KB


def test_an_image_in_use_is_not_evicted(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 30 * KB), Builder()
    with cache.acquire(digest(1), builder(1, 10 * KB)) as held:
        with cache.acquire(digest(2), builder(2, 10 * KB)):
            pass
        with cache.acquire(digest(3), builder(3, 20 * KB)):
            pass
        assert (held.rootfs / "content").exists()
        assert not cache.contains(digest(2))
        with pytest.raises(errors.CacheFull), cache.acquire(digest(4), builder(4, 25 * KB)):
            pass
        # evicting 3 would not have made room for 4: it stays
        assert cache.contains(digest(3))
    assert cache.contains(digest(1))
    assert not list((tmp_path / "work").iterdir())


def test_an_image_larger_than_the_cache_is_refused(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 10 * KB), Builder()
    with pytest.raises(errors.ImageTooLarge), cache.acquire(digest(1), builder(1, 11 * KB)):
        pass
    assert not cache.contains(digest(1))


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, 10 * KB)

    def failing(work: Path, max_bytes: int) -> tuple[Path, int, dict[str, Any]]:
        (work / "partial").write_text("half")
        raise errors.DeviceEntry("a layer of the image holds a device node or FIFO")

    with pytest.raises(errors.DeviceEntry), cache.acquire(digest(1), failing):
        pass
    assert not cache.contains(digest(1))
    assert not list((tmp_path / "work").iterdir())


def test_a_crashed_builds_leftovers_are_removed(tmp_path: Path) -> None:
    cache, builder = ImageCache(tmp_path, 10 * KB), Builder()
    stale = tmp_path / "work" / f"{digest(1)[7:]}.999.dead"
    (stale / "rootfs").mkdir(parents=True)
    with cache.acquire(digest(1), builder(1, KB)):
        pass
    assert not stale.exists()
