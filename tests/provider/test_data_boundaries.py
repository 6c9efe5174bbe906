"""What a publisher may publish and what a job may read: data roots, ATOLL_HOME, links,
directories on the way, other publishers' files, changed and missing files, and the job's
mount table."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.catalog.roots import DataRoot, DataRoots
from atoll.db.schema import asset_files
from atoll.errors import BadRequest, Conflict, Forbidden
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.job import Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from tests.helpers import (
    OPEN_DATA,
    Running,
    input_file,
    public_dir,
    require_sandbox,
    running_provider,
)

RAW = ComputePolicy(allowRawAlgorithm=True)
META = Metadata(name="d", type="dataset")

#: prints every line of the job's mount table, and the bytes of its first input
SHOW = """
import json, os
did = json.loads(os.environ["DIDS"])[0]
print(open("/proc/self/mountinfo").read())
print("DATA", open(f"/data/inputs/{did}/0").read())
"""


@pytest.fixture
def p(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def publish(client: ProviderClient, *paths: Path | str) -> str:
    return client.publish(META, [str(x) for x in paths], RAW).id


def public_file(directory: Path, name: str = "d.csv", text: str = "a,b\n1,2\n") -> Path:
    f = directory / name
    f.write_text(text)
    f.chmod(0o644)
    return f


def let_publish(p: Running, client: ProviderClient) -> None:
    p.node.context.publishing.publishers.add(client.key.address.lower())  # type: ignore[union-attr]


def declare(p: Running, *entries: str) -> None:
    roots = DataRoots([DataRoot.parse(e) for e in entries], p.home)
    p.node.context.publishing.roots = p.node.context.compute.roots = roots


# -- publishing: only what the publisher may publish ----------------------------------------


def test_a_file_outside_the_data_roots_is_refused(p: Running) -> None:
    outside = public_file(public_dir())
    with pytest.raises(BadRequest, match="file 0: it is outside the data roots") as e:
        publish(p.publisher, outside)
    assert str(outside) not in str(e.value)
    assert p.publisher.search()[0] == 0


def test_no_root_declared_refuses_everything(p: Running) -> None:
    declare(p)
    with pytest.raises(BadRequest, match="declares no data roots"):
        publish(p.publisher, public_file(p.data_dir()))


def test_the_providers_own_files_are_refused_even_below_a_root(p: Running) -> None:
    # a careless operator declares a root above ATOLL_HOME
    declare(p, str(p.home.parent))
    for name in ("atoll.db", "settings.toml", "provider.key", "key"):
        with pytest.raises(BadRequest, match="inside the provider's own directory"):
            publish(p.publisher, p.home / name)
    assert p.publisher.search()[0] == 0


def test_a_link_out_of_a_root_is_refused(p: Running) -> None:
    declare(p, str(p.home.parent), str(p.data))
    where = p.data_dir()
    (where / "settings.csv").symlink_to(p.home / "settings.toml")
    (where / "etc").symlink_to("/etc")
    service = p.node.context.publishing
    me = p.publisher.key.address
    # the provider judges the path as sent: it never follows a link
    for path, why in (
        (where / "settings.csv", "file 0: it is a symbolic link"),
        (where / "etc" / "hostname", "file 0: a directory on the way is a symbolic link"),
        (f"{where}/../../etc/hostname", "plain absolute path"),
    ):
        with pytest.raises(BadRequest, match=why):
            service.publish(me, META, [str(path)], RAW, None)
    # the SDK resolves links on the publisher's side: then the target is what is judged
    with pytest.raises(BadRequest, match="inside the provider's own directory"):
        publish(p.publisher, where / "settings.csv")
    with pytest.raises(BadRequest, match="outside the data roots"):
        publish(p.publisher, where / "etc" / "hostname")
    assert p.publisher.search()[0] == 0


def test_a_hard_link_to_a_providers_file_is_refused(p: Running) -> None:
    where = p.data_dir()
    os.link(p.home / "settings.toml", where / "settings.csv")
    os.chmod(where / "settings.csv", 0o644)
    with pytest.raises(BadRequest, match="other hard links"):
        publish(p.publisher, where / "settings.csv")


def test_a_file_the_jobs_user_cannot_reach_is_refused_with_the_fix(p: Running) -> None:
    closed = p.data_dir() / "closed"
    closed.mkdir(mode=0o700)
    hidden = public_file(closed)
    secret = public_file(p.data_dir(), "secret.csv")
    secret.chmod(0o600)
    for f in (hidden, secret):
        with pytest.raises(BadRequest, match=r"cannot read it: .*chmod o\+r FILE; chmod o\+x"):
            publish(p.publisher, f)
    closed.chmod(0o711)
    assert publish(p.publisher, hidden).startswith("did:")


def test_another_publishers_root_and_files_are_not_theirs(p: Running) -> None:
    let_publish(p, p.other)
    mine, theirs, shared = p.data_dir(), p.data_dir(), p.data_dir()
    declare(
        p,
        f"{mine}={p.publisher.key.address}",
        f"{theirs}={p.other.key.address}",
        str(shared),
    )
    private = public_file(mine)
    with pytest.raises(BadRequest, match="outside the data roots"):
        publish(p.other, private)
    assert publish(p.publisher, private)
    with pytest.raises(BadRequest, match="outside the data roots"):
        publish(p.publisher, public_file(theirs))
    # in a root both may use, a file published by one is not the other's to publish
    both = public_file(shared, text="shared\n")
    publish(p.publisher, both)
    with pytest.raises(Forbidden, match="already published by another publisher"):
        publish(p.other, both)


def test_data_roots_setting_is_checked() -> None:
    assert DataRoot.parse("/srv/a=0x" + "ab" * 20).publishers == {"0x" + "ab" * 20}
    for bad in ("srv/a", "/srv/a=", "/srv/a=alice", "/srv/../etc"):
        with pytest.raises(ValueError):
            DataRoot.parse(bad)


# -- check before pay ------------------------------------------------------------------------


def test_a_missing_file_is_refused_before_any_agreement_is_ordered(p: Running) -> None:
    f = public_file(p.data_dir())
    did = p.publisher.publish(META, [str(f)], RAW, price=10**18).id
    f.unlink()
    before = p.consumer.wallet.balances()["tokens"]
    with pytest.raises(Conflict, match=f"file 0 of {did} is no longer available"):
        p.consumer.start(did, rawcode="print(1)")
    assert p.consumer.wallet.balances()["tokens"] == before
    assert p.node.authorizer.ledger.running_jobs() == []
    with pytest.raises(Conflict, match="no longer available"):
        p.consumer.initialize(did, rawcode="print(1)")


def test_a_file_made_unreadable_after_publishing_is_refused_before_paying(p: Running) -> None:
    where = p.data_dir()
    f = public_file(where)
    did = publish(p.publisher, f)
    where.chmod(0o700)
    with pytest.raises(Conflict, match="cannot be read by the jobs' user"):
        p.consumer.initialize(did, rawcode="print(1)")


def test_a_file_swapped_for_a_link_is_never_read(p: Running) -> None:
    f = public_file(p.data_dir())
    did = publish(p.publisher, f)
    f.unlink()
    f.symlink_to(p.home / "settings.toml")
    with pytest.raises(Conflict, match="no longer available"):
        p.consumer.initialize(did, rawcode="print(1)")


# -- what the job reads is what the receipt names ----------------------------------------------


def test_a_changed_dataset_is_refused_and_an_untouched_one_is_not_rehashed_away(
    p: Running,
) -> None:
    f = public_file(p.data_dir(), text="a,b\n1,2\n")
    did = publish(p.publisher, f)
    os.utime(f, ns=(1, 1))  # the fingerprint moves, the bytes do not: still runs
    done = p.consumer.wait(p.consumer.start(did, rawcode="print('ok')").jobId, timeout=60)
    assert done.status == JobStatus.FINISHED, done.statusText
    f.write_text("a,b\n9,9\n")  # same size, other bytes
    with pytest.raises(Conflict, match=f"file 0 of {did} has changed since it was published"):
        p.consumer.initialize(did, rawcode="print(1)")


def test_a_dataset_changed_while_the_job_runs_withholds_its_results(p: Running) -> None:
    f = public_file(p.data_dir(), text="before\n")
    # open data: its log is followed live, which tells when the job has started reading
    did = p.publisher.publish(META, [str(f)], OPEN_DATA).id
    # the job waits until it sees other bytes than it started with, then reports them
    code = f"""
import time
path = "/data/inputs/{did}/0"
first = open(path).read()
print("reading", flush=True)
while open(path).read() == first:
    time.sleep(0.05)
open("/data/outputs/seen.txt", "w").write(open(path).read())
"""
    job = p.consumer.start(did, rawcode=code)
    for chunk in p.consumer.logs(job.jobId, follow=True):
        if b"reading" in chunk:
            break
    with f.open("r+") as fh:  # in place: the job reads the same inode
        fh.write("AFTER!\n")
    done = p.consumer.wait(job.jobId, timeout=60)
    assert done.status == JobStatus.DATASET_CHANGED, done.statusText
    assert "changed while the job ran" in done.statusText
    assert done.results == []


@pytest.mark.anyio
async def test_the_engine_refuses_a_file_that_is_not_what_was_published(p: Running) -> None:
    """Past the provider's check (a file changed between start and run), the engine itself
    verifies: it runs nothing and says so with its own status."""
    assert p.node.operator is not None
    registry = p.node.operator.registry
    f = public_file(public_dir(), text="published\n")
    published = input_file(f)
    f.write_text("other bytes\n")
    did = "did:atoll:" + "ef" * 32
    wf = Workflow(
        owner=p.consumer.key.address,
        inputs=[WorkflowInput(did=did, ddo={"id": did}, locations=[str(f)], files=[published])],
        algorithm=WorkflowAlgorithm(rawcode="print('ran')"),
    )
    info = await registry.register(wf)
    done = await registry.wait(info.jobId, 30)
    assert done.status == JobStatus.DATASET_CHANGED, done.statusText
    assert "has changed since it was published" in done.statusText
    # and a file the provider never verified does not run at all
    bare = wf.model_copy(
        update={"inputs": [WorkflowInput(did=did, ddo={"id": did}, locations=[str(f)])]}
    )
    info = await registry.register(bare)
    done = await registry.wait(info.jobId, 30)
    assert done.status == JobStatus.DATA_PROVISIONING_FAILED, done.statusText


@pytest.mark.anyio
async def test_the_engine_reads_no_file_through_a_link(p: Running) -> None:
    assert p.node.operator is not None
    registry = p.node.operator.registry
    where = public_dir()
    f = public_file(where)
    entry = input_file(f)
    f.unlink()
    f.symlink_to(p.home / "settings.toml")
    did = "did:atoll:" + "ab" * 32
    wf = Workflow(
        owner=p.consumer.key.address,
        inputs=[WorkflowInput(did=did, ddo={"id": did}, locations=[str(f)], files=[entry])],
        algorithm=WorkflowAlgorithm(rawcode="print(open('/data/inputs/" + did + "/0').read())"),
    )
    info = await registry.register(wf)
    done = await registry.wait(info.jobId, 30)
    assert done.status == JobStatus.DATA_PROVISIONING_FAILED, done.statusText
    assert str(p.home) not in done.statusText


# -- host paths never appear inside the job ----------------------------------------------------


def test_the_jobs_mount_table_names_no_host_path(p: Running, tmp_path: Path) -> None:
    f = public_file(p.data_dir(), "salaries-2026.csv", text="secret,data\n")
    # open data: the mount table the job prints is released unchecked, to be looked at
    did = p.publisher.publish(META, [str(f)], OPEN_DATA).id
    done = p.consumer.wait(p.consumer.start(did, rawcode=SHOW).jobId, timeout=60)
    assert done.status == JobStatus.FINISHED, done.statusText
    out = tmp_path / "out"
    p.consumer.download_results(done, out)
    log = (out / "algorithm.log").read_text()
    assert "DATA secret,data" in log
    table = log.split("DATA")[0]
    assert f"/data/inputs/{did}/0" in table
    for host in (str(p.data), str(f), f.name, str(p.home), str(p.home.resolve())):
        assert host not in table
    # the input is named by its content instead
    assert hashlib.sha256(b"secret,data\n").hexdigest() in table
    assert json.dumps(str(p.home))[1:-1] not in table


def test_an_asset_stored_inside_atoll_home_is_never_handed_to_a_job(p: Running) -> None:
    """An asset recorded before data roots existed, pointing at the provider's own files."""
    did = publish(p.publisher, public_file(p.data_dir()))
    with p.node.db.begin() as conn:
        conn.execute(
            asset_files.update()
            .where(asset_files.c.did == did)
            .values(location=str((p.home / "settings.toml").resolve()))
        )
    with pytest.raises(Conflict, match="no longer in a data root its publisher may publish from"):
        p.consumer.initialize(did, rawcode="print(1)")
    with pytest.raises(Conflict, match="no longer in a data root"):
        p.consumer.start(did, rawcode="print(open('/data/inputs/x/0').read())")


@pytest.mark.anyio
async def test_the_engine_runs_nothing_below_a_directory_the_job_cannot_enter(p: Running) -> None:
    """The engine judges an input as the job's user would reach it, every directory on the
    way, although it could hand the file over as root."""
    assert p.node.operator is not None
    registry = p.node.operator.registry
    closed = public_dir()
    f = public_file(closed)
    closed.chmod(0o700)
    did = "did:atoll:" + "cd" * 32
    wf = Workflow(
        owner=p.consumer.key.address,
        inputs=[WorkflowInput(did=did, ddo={"id": did}, locations=[str(f)], files=[input_file(f)])],
        algorithm=WorkflowAlgorithm(rawcode="print(open('/data/inputs/" + did + "/0').read())"),
    )
    info = await registry.register(wf)
    done = await registry.wait(info.jobId, 30)
    assert done.status == JobStatus.DATA_PROVISIONING_FAILED, done.statusText
    assert "not readable by the sandbox user" in done.statusText
    assert str(closed) not in done.statusText


def test_jobs_run_when_atoll_home_is_reached_through_a_link(tmp_path: Path) -> None:
    """Links are refused on the way to a dataset, not on the way to the job's own files."""
    require_sandbox()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with running_provider(tmp_path / "link" / "home") as p:
        did = p.dataset(policy=OPEN_DATA)
        done = p.consumer.wait(p.consumer.start(did, rawcode=SHOW).jobId, timeout=60)
        assert done.status == JobStatus.FINISHED, done.statusText


def test_a_root_declared_through_a_link_is_used_as_its_target(p: Running) -> None:
    real = p.data_dir()
    link = p.data_dir() / "current"
    link.symlink_to(real)
    declare(p, str(link))
    service = p.node.context.publishing
    f = public_file(real)
    ddo = service.publish(p.publisher.key.address, META, [str(link / f.name)], RAW, None)
    assert [x.location for x in service.assets.files(ddo.id)] == [str(f)]
