"""Result files of every name a job can write: served with RFC 6266 ``filename*`` and saved by
the SDK with the right bytes; a download that fails leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from atoll import signing
from atoll.config import load_settings
from atoll.errors import RemoteError
from atoll.models.status import JobStatus
from atoll.node import operator_app
from atoll.provider.disposition import attachment
from atoll.server import BackgroundServer
from tests.helpers import OPEN_DATA, Running, require_sandbox, running_provider
from tests.homes import init_home

NAMES = [
    "résumé 📈.csv",
    "tab\there.txt",
    "new\nline.txt",
    "\x1b[31mred\x1b[0m.txt",
    'quote"and\\back%25.txt',
    "日本語/データ.json",
    "é" * 120 + ".txt",  # 245 bytes: near the file system's limit for one name
]


def _filename_star(header: str) -> str:
    value = header.split("filename*=", 1)[1]
    assert value.startswith("UTF-8''")
    return unquote(value.removeprefix("UTF-8''"), errors="strict")


@pytest.mark.parametrize("name", [*NAMES, "x" * 4000, "a/b/c.txt"])
def test_disposition_is_ascii_and_carries_the_name(name: str) -> None:
    header = attachment(name)
    header.encode("ascii")  # sendable whatever the name
    assert all(" " <= c <= "~" for c in header)
    base = name.rsplit("/", 1)[-1]
    assert _filename_star(header) == base[:200]
    fallback = header.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in fallback and "\\" not in fallback


def test_hostile_names_download_with_the_right_bytes(provider: Running, tmp_path: Path) -> None:
    require_sandbox()
    # open data: the outputs are released unchecked, whatever their names hold
    did = provider.dataset(tmp_path, policy=OPEN_DATA)
    contents = {name: f"{i}: {name}\n".encode() * (i + 1) for i, name in enumerate(NAMES)}
    files = json.dumps({n: c.decode() for n, c in contents.items()})
    code = (
        "import json, os\n"
        f"files = json.loads({json.dumps(files)})\n"
        "for name, text in files.items():\n"
        "    path = os.path.join('/data/outputs', name)\n"
        "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "    open(path, 'w').write(text)\n"
    )
    info = provider.consumer.start(did, rawcode=code)
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    outputs = {r.filename: r for r in info.results if r.type == "output"}
    assert set(outputs) == set(NAMES)

    # the header, as served, names each file
    key = provider.consumer.key
    assert key is not None
    for name, entry in outputs.items():
        nonce = key.next_nonce()
        sig = key.sign(signing.message("result", key.address, info.jobId, entry.index, nonce))
        r = httpx.get(
            provider.url + "/api/services/computeResult",
            params={
                "consumerAddress": key.address,
                "nonce": nonce,
                "signature": sig,
                "jobId": info.jobId,
                "index": entry.index,
            },
        )
        assert r.status_code == 200, r.text
        assert r.content == contents[name]
        assert _filename_star(r.headers["content-disposition"]) == name.rsplit("/", 1)[-1]

    out = tmp_path / "out"
    saved = provider.consumer.download_results(info, out)
    assert len(saved) == len(info.results)
    for name, data in contents.items():
        assert (out / name).read_bytes() == data
        assert hashlib.sha256(data).hexdigest() == outputs[name].sha256


def test_a_failed_download_leaves_nothing(provider: Running, tmp_path: Path) -> None:
    require_sandbox()
    did = provider.dataset(tmp_path, policy=OPEN_DATA)  # "aaa…" would be held as hex
    code = "for n in 'abc':\n    open(f'/data/outputs/{n}.txt', 'w').write(n * 1000)\n"
    info = provider.consumer.wait(provider.consumer.start(did, rawcode=code).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED
    # the last file does not match what the status promised
    broken = info.model_copy(deep=True)
    broken.results[-1].sha256 = "0" * 64

    fresh = tmp_path / "fresh" / "out"
    with pytest.raises(RemoteError, match="does not match its sha256"):
        provider.consumer.download_results(broken, fresh)
    assert not fresh.exists()
    assert list(fresh.parent.iterdir()) == []

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    with pytest.raises(RemoteError):
        provider.consumer.download_results(broken, existing)
    assert sorted(p.name for p in existing.iterdir()) == ["mine.txt"]

    saved = provider.consumer.download_results(info, existing)
    assert (existing / "a.txt").read_text() == "a" * 1000
    assert sorted(p.name for p in existing.iterdir()) == sorted(
        ["mine.txt", *(p.name for p in saved)]
    )


def test_names_pass_through_a_standalone_operator(tmp_path: Path) -> None:
    require_sandbox()
    provider_home = tmp_path / "provider"
    provider_key, _ = init_home(provider_home)
    op_home = tmp_path / "operator"
    init_home(op_home)
    op_settings = load_settings(op_home, job_wall_seconds=20.0)
    with (
        BackgroundServer(operator_app(op_settings, {provider_key.address})) as op_url,
        running_provider(provider_home, operator_url=op_url) as p,
    ):
        did = p.dataset(tmp_path)
        code = "open('/data/outputs/résumé 📈.csv', 'w').write('a,b\\n')"
        info = p.consumer.wait(p.consumer.start(did, rawcode=code).jobId, timeout=60)
        assert info.status == JobStatus.FINISHED, info.statusText
        saved = p.consumer.download_results(info, tmp_path / "out")
        assert (tmp_path / "out" / "résumé 📈.csv").read_text() == "a,b\n"
        assert len(saved) == len(info.results)


def test_a_fresh_download_folder_is_made_as_usual(provider: Running, tmp_path: Path) -> None:
    require_sandbox()
    did = provider.dataset(tmp_path)
    info = provider.consumer.wait(provider.consumer.start(did, rawcode="pass").jobId, timeout=60)
    reference = tmp_path / "reference"
    reference.mkdir()
    provider.consumer.download_results(info, tmp_path / "out")
    assert (tmp_path / "out").stat().st_mode == reference.stat().st_mode
