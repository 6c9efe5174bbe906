"""The demo's sample image: Debian's python3 with pandas and numpy, built from Debian's
packages by mmdebstrap (no container engine), kept as an OCI layout in a cache keyed by its
recipe, and served by a registry the demo starts on the loopback.

``python -m atoll.cli.demo_image`` builds it (scripts/setup does, so that the demo starts at
once); a build takes about half a minute and some 50 MB of downloads, once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from atoll.errors import AtollError
from atoll.images.layout import write_layout

SUITE = "bookworm"
RECIPE = (
    "mmdebstrap",
    "--quiet",
    "--variant=extract",
    "--include=python3,python3-pandas,python3-numpy",
    "--skip=output/dev",
    "--aptopt=Acquire::Languages none",
    # the extract variant runs no maintainer scripts: the links update-alternatives would make
    # to the reference BLAS and LAPACK (numpy loads libblas.so.3) are made here
    '--extract-hook=for d in "$1"/usr/lib/*-linux-gnu; do for l in blas lapack; do'
    ' ln -sf $l/lib$l.so.3 "$d/lib$l.so.3"; done; done',
    SUITE,
)
REPOSITORY = "atoll/pandas"
TAG = "latest"
ENV = ("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8")
TOOLS = ("mmdebstrap", "skopeo", "docker-registry")


def cache_dir() -> Path:
    return Path(os.environ.get("ATOLL_IMAGE_BUILD_CACHE") or Path.home() / ".cache/atoll/images")


def need_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise AtollError(
            f"the demo's image needs {', '.join(missing)}: run scripts/setup (or apt-get install "
            f"{' '.join(missing)})"
        )


def sample_layout(say: Callable[[str], None] = print) -> Path:
    """The OCI layout of the sample image, built on first use (under a lock: two demos at
    once build it once) and reused while its recipe stays the same."""
    key = hashlib.sha256("\0".join((*RECIPE, TAG, *ENV)).encode()).hexdigest()[:16]
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    layout = cache / f"pandas-{key}"
    with (cache / f".{key}.lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (layout / "index.json").exists():
            return layout
        need_tools()
        say("building the sample image (python3, pandas, numpy) from Debian packages, once…")
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
        try:
            built = subprocess.run(
                [*RECIPE, str(work / "root.tar")], capture_output=True, text=True, check=False
            )
            if built.returncode != 0:
                last = (built.stderr.strip().splitlines() or ["no message"])[-1]
                raise AtollError(f"mmdebstrap could not build the sample image: {last}")
            write_layout(work / "root.tar", work / "layout", TAG, {"Env": list(ENV)})
            (work / "layout").rename(layout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"built the sample image in {time.monotonic() - started:.0f} s (cached: {layout})")
    return layout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_registry() -> Iterator[str]:
    """Debian's docker-registry on a loopback port, storing in a temporary directory; yields
    its ``host:port``."""
    need_tools()
    home = Path(tempfile.mkdtemp(prefix="atoll-demo-registry-"))
    port = _free_port()
    (home / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {home / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with (home / "registry.log").open("wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(home / "config.yml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AtollError("the demo's registry did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def push(layout: Path, host: str) -> str:
    """Push the sample image to the registry at ``host``; returns its digest."""
    with tempfile.TemporaryDirectory(prefix="atoll-skopeo-") as tmp:
        digest_file = Path(tmp) / "digest"
        pushed = subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--digestfile",
                str(digest_file),
                f"oci:{layout}:{TAG}",
                f"docker://{host}/{REPOSITORY}:{TAG}",
            ],
            capture_output=True,
            text=True,
            check=False,
            # its own home: no credentials of the user's are read or written
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp},
        )
        if pushed.returncode != 0:
            last = (pushed.stderr.strip().splitlines() or ["no message"])[-1]
            raise AtollError(f"skopeo could not push the sample image: {last}")
        return digest_file.read_text().strip()


if __name__ == "__main__":
    sample_layout()
