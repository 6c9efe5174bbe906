"""A real registry and real images for the image tests.

``registry``: Debian's docker-registry (distribution) on a loopback port, with a user and
password (htpasswd, bcrypt), storing in a temporary directory. ``debian_image``: a minimal
Debian root with python3 (mmdebstrap, extract variant), built once into an OCI layout cached
under ~/.cache/atoll/test-images (keyed by a hash of its recipe) and pushed with skopeo.

Without these tools the tests that need them skip, unless ATOLL_REQUIRE_SANDBOX=1 (CI), where
they fail.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from atoll.images.access import RegistryAccess
from tests.images.oci import Image, Layer, Pusher, write_layout

SUITE = "bookworm"
RECIPE = (
    "mmdebstrap",
    "--quiet",
    "--variant=extract",
    "--include=python3-minimal",
    "--skip=output/dev",
    "--aptopt=Acquire::Languages none",
    SUITE,
)
#: the same with Python's whole standard library (json, socket, ctypes …): what the engine's
#: tests run their jobs in, to run the host runtime's job code unchanged
PYTHON_RECIPE = tuple(
    "--include=python3" if part == "--include=python3-minimal" else part for part in RECIPE
)
REGISTRY_USER = "atoll-puller"


def need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        _missing(f"{', '.join(missing)} not installed (scripts/setup installs them)")


def _missing(reason: str) -> None:
    if os.environ.get("ATOLL_REQUIRE_SANDBOX") == "1":
        pytest.fail(reason + " and ATOLL_REQUIRE_SANDBOX=1")
    pytest.skip(reason)


def bcrypt_hash(password: str) -> str:
    try:
        import bcrypt
    except ImportError:
        _missing("bcrypt not installed (pip install -e '.[dev]')")
        raise
    return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Registry:
    """A running registry: where it listens, its storage and its one account."""

    host: str
    storage: Path
    username: str
    password: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def access(self, **changes: object) -> RegistryAccess:
        values: dict[str, object] = {
            "host": self.host,
            "username": self.username,
            "password": self.password,
            "insecure": True,
        }
        values.update(changes)
        return RegistryAccess.model_validate(values)

    @property
    def pusher(self) -> Pusher:
        return Pusher(self.url, (self.username, self.password))

    def blob_file(self, digest: str) -> Path:
        hex_digest = digest.partition(":")[2]
        return (
            self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"
        )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    need("docker-registry")
    home = tmp_path_factory.mktemp("registry")
    password = secrets.token_urlsafe(18)
    hashed = bcrypt_hash(password)
    (home / "htpasswd").write_text(f"{REGISTRY_USER}:{hashed}\n")
    port = free_port()
    (home / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {home / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: atoll-test\n    path: {home / 'htpasswd'}\n"
    )
    log = (home / "registry.log").open("wb")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(home / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(trust_env=False) as http:
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{port}/v2/").status_code == 401:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "the test registry did not start: " + (home / "registry.log").read_text()
                    )
                time.sleep(0.05)
        yield Registry(f"127.0.0.1:{port}", home / "storage", REGISTRY_USER, password)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _image_cache() -> Path:
    base = os.environ.get("ATOLL_TEST_IMAGE_CACHE") or Path.home() / ".cache/atoll/test-images"
    return Path(base)


def build_debian_layout(recipe: tuple[str, ...] = RECIPE, name: str = "debian-python3") -> Path:
    """The OCI layout of a Debian test image (by default the minimal one), built on first use
    and then reused."""
    need("mmdebstrap")
    key = hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:16]
    cache = _image_cache()
    cache.mkdir(parents=True, exist_ok=True)
    layout = cache / f"{name}-{key}"
    with (cache / f".{key}.lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (layout / "index.json").exists():
            return layout
        work = cache / f".{key}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            subprocess.run([*recipe, str(work / "root.tar")], check=True, capture_output=True)
            tar = (work / "root.tar").read_bytes()
            write_layout(work / "layout", Image([Layer(tar, gzip.compress(tar, 6, mtime=0))]))
            (work / "layout").rename(layout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return layout


@dataclass(frozen=True)
class PushedImage:
    """An image in the test registry."""

    repository: str
    digest: str

    def reference(self, registry: Registry) -> str:
        return f"{registry.host}/{self.repository}@{self.digest}"


def skopeo_push(registry: Registry, layout: Path, repository: str, *extra: str) -> str:
    need("skopeo")
    target = f"docker://{registry.host}/{repository}:latest"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{registry.username}:{registry.password}",
            *extra,
            f"oci:{layout}:latest",
            target,
        ],
        check=True,
        capture_output=True,
    )
    inspected = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--creds",
            f"{registry.username}:{registry.password}",
            "--format",
            "{{.Digest}}",
            target,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return inspected.stdout.strip()


@pytest.fixture(scope="session")
def debian_image(registry: Registry) -> PushedImage:
    """The Debian python3 image, pushed as an OCI image."""
    need("umoci", "skopeo")
    layout = build_debian_layout()
    return PushedImage("debian/python3", skopeo_push(registry, layout, "debian/python3"))


@pytest.fixture(scope="session")
def debian_image_v2s2(registry: Registry) -> PushedImage:
    """The same image, pushed as a Docker schema 2 image."""
    need("umoci", "skopeo")
    layout = build_debian_layout()
    digest = skopeo_push(registry, layout, "debian/python3-docker", "--format", "v2s2")
    return PushedImage("debian/python3-docker", digest)


@pytest.fixture(scope="session")
def debian_python_image(registry: Registry) -> PushedImage:
    """The Debian image with Python's whole standard library, pushed as an OCI image."""
    need("umoci", "skopeo")
    layout = build_debian_layout(PYTHON_RECIPE, "debian-python3-full")
    return PushedImage("debian/python3-full", skopeo_push(registry, layout, "debian/python3-full"))


@pytest.fixture(scope="session")
def pandas_image(registry: Registry) -> PushedImage:
    """The Debian image with pandas and numpy (the demo's sample image, which scripts/setup
    builds and caches), pushed as an OCI image."""
    from atoll.cli.demo_image import sample_layout

    need("umoci", "skopeo", "mmdebstrap")
    layout = sample_layout()
    return PushedImage("debian/pandas", skopeo_push(registry, layout, "debian/pandas"))
