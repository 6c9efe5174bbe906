"""A job's files to a worker with its own job directory, and its outputs back: what is
sent, where it lands, and what the operator's side takes back (nothing outside the job's
outputs and logs, no link out of them)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from atoll.cluster.shipping import (
    ShippingError,
    job_files,
    job_root,
    pack_outputs,
    stage,
    unpack_outputs,
)
from atoll.engine.executor import ExecutionSpec, Mount, Runtime


def _spec(tmp_path: Path, dataset: Path) -> ExecutionSpec:
    work = tmp_path / "op" / "job1" / "work"
    for sub in ("ddos", "transformations", "outputs", "logs"):
        (work / sub).mkdir(parents=True)
    (work / "ddos" / "did:1").write_text("{}")
    (work / "transformations" / "algorithm").write_text("print(1)")
    (work / "algoCustomData.json").write_text('{"k": 1}')
    return ExecutionSpec(
        job_id="job1",
        runtime=Runtime(Path("/usr/bin/python3")),
        args=["/data/transformations/algorithm"],
        mounts=[
            Mount(dataset, "/data/inputs/did:1/0", content="ab" * 32, publisher=True),
            Mount(work / "ddos", "/data/ddos"),
            Mount(work / "transformations", "/data/transformations"),
            Mount(work / "algoCustomData.json", "/data/inputs/algoCustomData.json"),
        ],
        env={},
        outputs_dir=work / "outputs",
        logs_dir=work / "logs",
    )


def test_the_jobs_files_are_staged_in_the_workers_own_directory(tmp_path: Path) -> None:
    dataset = tmp_path / "data.csv"
    dataset.write_text("a\n")
    spec = _spec(tmp_path, dataset)
    files = job_files(spec)
    # the engine's files travel, the dataset does not
    assert sorted(files) == ["algoCustomData.json", "ddos/did:1", "transformations/algorithm"]
    staged = stage(spec, files, tmp_path / "worker")
    work = job_root(tmp_path / "worker", "job1") / "work"
    assert staged.outputs_dir == work / "outputs" and staged.outputs_dir.is_dir()
    assert staged.logs_dir == work / "logs"
    by_target = {m.target: m.source for m in staged.mounts}
    assert by_target["/data/inputs/did:1/0"] == dataset
    assert by_target["/data/ddos"] == work / "ddos"
    assert (by_target["/data/transformations"] / "algorithm").read_text() == "print(1)"
    assert by_target["/data/inputs/algoCustomData.json"].read_text() == '{"k": 1}'
    assert oct(work.stat().st_mode & 0o777) == "0o755"


@pytest.mark.parametrize("name", ["../escape", "/etc/x", "ddos/../../x"])
def test_a_file_named_outside_the_job_is_refused(tmp_path: Path, name: str) -> None:
    spec = _spec(tmp_path, tmp_path / "data.csv")
    with pytest.raises(ShippingError):
        stage(spec, {name: ""}, tmp_path / "worker")
    assert not (tmp_path / "escape").exists()


def test_outputs_come_back_whole_with_links_as_links(tmp_path: Path) -> None:
    out, logs = tmp_path / "w" / "outputs", tmp_path / "w" / "logs"
    (out / "sub").mkdir(parents=True)
    logs.mkdir()
    (out / "a.txt").write_bytes(b"A")
    (out / "sub" / "b.bin").write_bytes(b"\0" * 1000)
    (out / "inside").symlink_to("a.txt")
    (out / "outside").symlink_to("/etc/passwd")
    (out / "up").symlink_to("../../../etc")
    (logs / "note").write_text("n")
    data = pack_outputs(out, logs)
    mine_out, mine_logs = tmp_path / "op" / "outputs", tmp_path / "op" / "logs"
    mine_out.mkdir(parents=True)
    (mine_out / "stale").write_text("from before")
    mine_logs.mkdir()
    unpack_outputs(data, mine_out, mine_logs)
    assert sorted(os.listdir(mine_out)) == ["a.txt", "inside", "outside", "sub", "up"]
    assert (mine_out / "sub" / "b.bin").read_bytes() == b"\0" * 1000
    # links stay links, as a local job's (the output checks skip them)
    assert os.readlink(mine_out / "inside") == "a.txt"
    assert os.readlink(mine_out / "outside") == "/etc/passwd"
    assert os.readlink(mine_out / "up") == "../../../etc"
    assert (mine_logs / "note").read_text() == "n"


def test_a_stream_with_files_outside_the_outputs_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("elsewhere/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    out, logs = tmp_path / "outputs", tmp_path / "logs"
    with pytest.raises(ShippingError):
        unpack_outputs(buf.getvalue(), out, logs)
    assert not (tmp_path / "elsewhere").exists()


def test_nothing_is_written_through_a_link(tmp_path: Path) -> None:
    """A stream (not one a worker makes: it never follows links) with a file under a link
    that points out: the file is left out, nothing is written outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("outputs/d")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        info = tarfile.TarInfo("outputs/d/planted")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        bad = tarfile.TarInfo("outputs/../../planted2")
        bad.type, bad.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(bad)
    out, logs = tmp_path / "op" / "outputs", tmp_path / "op" / "logs"
    out.parent.mkdir()
    unpack_outputs(buf.getvalue(), out, logs)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "planted2").exists()
    assert os.readlink(out / "d") == str(outside)
