"""atoll access through the CLI and a real provider: publish with an access offer, order,
download (a partial file resumed), and one-line refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from atoll.cli.main import run
from tests.helpers import running_provider


def atoll(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command as ``atoll`` does; its exit status, and what it printed."""
    capsys.readouterr()
    code = run(list(args))
    said = capsys.readouterr()
    return code, said.out + said.err


def test_order_and_download_resume_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_provider(tmp_path / "home") as p:
        data = os.urandom(5 << 20)
        f = p.data_dir() / "blob.bin"
        f.write_bytes(data)
        f.chmod(0o644)
        publisher = ["--provider", p.url, "--key", str(p.home / "key")]
        assert p.consumer.key is not None
        p.consumer.key.save(tmp_path / "consumer.key")
        consumer = ["--provider", p.url, "--key", str(tmp_path / "consumer.key")]
        code, said = atoll(
            capsys,
            "publish",
            "dataset",
            str(f),
            "--name",
            "blob",
            "--access-price",
            "1.5",
            *publisher,
        )
        assert code == 0, said
        did = said.strip()
        ddo = p.consumer.asset(did)
        access = ddo.service("access")
        assert access is not None and access.price == 15 * 10**17
        # no agreement yet: one line that says how to get one
        out = tmp_path / "out"
        code, said = atoll(capsys, "access", "download", did, "--to", str(out), *consumer)
        assert code == 1 and "atoll access order" in said and len(said.splitlines()) == 1
        code, said = atoll(capsys, "access", "order", did, "--json", *consumer)
        assert code == 0, said
        aid = json.loads(said)["agreementId"]
        # what a broken download leaves: the first MiB in file-0.part
        out.mkdir()
        (out / "file-0.part").write_bytes(data[: 1 << 20])
        code, said = atoll(capsys, "access", "download", did, "--to", str(out), *consumer)
        assert code == 0, said
        assert str(out / "file-0") in said
        assert (out / "file-0").read_bytes() == data
        assert not (out / "file-0.part").exists()
        assert p.consumer.access_files(did, aid)[0]["downloads"] == 1
        # a damaged part is not renamed: removed, and the download fails in one line
        (out / "file-0").unlink()
        (out / "file-0.part").write_bytes(b"\0" * (5 << 20))
        code, said = atoll(
            capsys, "access", "download", did, "--to", str(out), "--quiet", *consumer
        )
        assert code == 1 and "does not match its published sha256" in said
        assert not (out / "file-0").exists() and not (out / "file-0.part").exists()
