"""Jobs in images through the whole flow: an Ocean-style pandas algorithm published with its
image by digest runs unchanged, on chain, and its receipt binds the image; and the
registry's credentials appear nowhere a consumer, a log or a job could see them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import AtollError
from atoll.images.trust import container_section_checksum
from atoll.models.ddo import (
    AlgorithmContainer,
    AlgorithmInfo,
    ComputePolicy,
    Metadata,
    TrustedAlgorithm,
)
from atoll.models.environment import Environment
from atoll.models.output_policy import OutputPolicy
from atoll.models.status import JobStatus
from atoll.sdk.verify import check_container, check_signature
from tests.helpers import Running, require_sandbox, running_provider
from tests.images.conftest import PushedImage, Registry

# as Ocean's algorithm examples are written: the inputs by DID, pandas, /data/outputs
OCEAN_ALGORITHM = """\
import json
import os

import numpy as np
import pandas as pd

did = json.loads(os.getenv("DIDS"))[0]
df = pd.read_csv(f"/data/inputs/{did}/0")
summary = {
    "rows": int(len(df)),
    "mean_b": float(df["b"].mean()),
    "std_b": float(np.std(df["b"].to_numpy())),
    "pandas": pd.__version__,
}
with open("/data/outputs/summary.json", "w") as f:
    json.dump(summary, f)
print("summarised", len(df), "rows")
"""
ROWS = 200
CSV = "a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(ROWS))


@pytest.fixture
def provider(
    tmp_path: Path, registry: Registry, pandas_image: PushedImage, debian_python_image: PushedImage
) -> Iterator[Running]:
    require_sandbox()
    envs = (
        Environment(id="default", images=[pandas_image.digest]),
        Environment(id="any", images=["*"], memory_mb=512),
    )
    with running_provider(
        tmp_path / "home",
        environments=envs,
        extra_roots=(str(tmp_path),),
        image_registries=(registry.access(),),
        job_wall_seconds=120.0,
    ) as running:
        yield running


def test_an_ocean_pandas_algorithm_runs_unchanged_in_its_image(
    provider: Running, tmp_path: Path, registry: Registry, pandas_image: PushedImage
) -> None:
    code = tmp_path / "algorithm.py"
    code.write_text(OCEAN_ALGORITHM)
    image = f"{registry.host}/{pandas_image.repository}"
    container = AlgorithmContainer(
        entrypoint="python3 $ALGO", image=image, checksum=pandas_image.digest
    )
    meta = Metadata(name="summary", type="algorithm", algorithm=AlgorithmInfo(container=container))
    algo = provider.publisher.publish(meta, [str(code)])
    trusted = TrustedAlgorithm(
        did=algo.id,
        filesChecksum=algo.filesChecksum,
        containerSectionChecksum=container_section_checksum("python3 $ALGO", pandas_image.digest),
    )
    data = provider.dataset(
        text=CSV,
        price=10,
        policy=ComputePolicy(
            publisherTrustedAlgorithms=[trusted], outputPolicy=OutputPolicy(mode="off")
        ),
    )
    before = provider.consumer.wallet.balances()["tokens"]
    job = provider.consumer.start(data, algorithm_did=algo.id)  # orders on chain, then starts
    assert provider.consumer.wallet.balances()["tokens"] < before
    info = provider.consumer.wait(job.jobId, timeout=300)
    log = b"".join(provider.consumer.logs(info.jobId)).decode(errors="replace")
    assert info.status == JobStatus.FINISHED, f"{info.statusText}: {log}"
    outputs = {r.filename: r for r in info.results if r.type == "output"}
    summary = json.loads(provider.consumer.result(info.jobId, outputs["summary.json"].index))
    column = [i % 7 for i in range(ROWS)]
    mean = sum(column) / ROWS
    assert summary["rows"] == ROWS
    assert summary["mean_b"] == pytest.approx(mean)
    assert summary["std_b"] == pytest.approx((sum((x - mean) ** 2 for x in column) / ROWS) ** 0.5)
    # the receipt binds the image by digest and the entrypoint the job ran
    signed = provider.consumer.receipt(info.jobId)
    ran = signed.receipt.algorithm.container
    assert ran is not None
    assert ran.image == f"{image}@{pandas_image.digest}"
    assert ran.entrypoint == "python3 $ALGO"
    assert ran.containerSectionChecksum == trusted.containerSectionChecksum
    assert check_signature(signed) == []
    assert check_container(signed, provider.consumer.asset(algo.id)) == []


SNOOP = """\
import json
import os
from pathlib import Path

seen = {"environ": dict(os.environ)}
for p in ["/proc/self/environ", "/proc/1/environ", "/proc/self/cmdline"]:
    try:
        seen[p] = Path(p).read_bytes().decode("latin-1")
    except OSError as exc:
        seen[p] = str(exc)
files = {}
for top in ["/data", "/etc", "/tmp", "/root", "/run"]:
    for root, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(root, name)
            try:
                files[path] = Path(path).read_bytes()[:65536].decode("latin-1")
            except OSError:
                pass
seen["files"] = files
Path("/data/outputs/seen.json").write_text(json.dumps(seen))
print(json.dumps(seen["environ"]))
"""


def test_registry_credentials_appear_nowhere(
    provider: Running,
    registry: Registry,
    debian_python_image: PushedImage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [registry.password, registry.username]
    seen: list[str] = []
    name = f"{registry.host}/{debian_python_image.repository}"
    data = provider.dataset(
        text=CSV,
        price=10,
        policy=ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="off")),
    )
    seen.append(json.dumps(provider.consumer.asset(data).public_json()))
    seen.append(json.dumps(provider.consumer.environments()))
    # a job that looks everywhere it can for them, run from a tag resolved with credentials
    tagged = AlgorithmContainer(entrypoint="python3 $ALGO", image=name, tag="latest")
    job = provider.consumer.start(data, rawcode=SNOOP, container=tagged, environment="any")
    statuses = [job]
    while not statuses[-1].terminal:
        statuses.append(provider.consumer.status(job.jobId, wait=5, since=statuses[-1].status))
    info = statuses[-1]
    assert info.status == JobStatus.FINISHED, info.statusText
    assert info.container is not None and info.container.image.startswith(name + "@sha256:")
    seen += [s.model_dump_json() for s in statuses]
    seen.append(b"".join(provider.consumer.logs(info.jobId)).decode("latin-1"))
    for r in info.results:
        seen.append(provider.consumer.result(info.jobId, r.index).decode("latin-1"))
    seen.append(provider.consumer.receipt(info.jobId).model_dump_json())
    snooped = json.loads(
        provider.consumer.result(
            info.jobId, next(r.index for r in info.results if r.filename == "seen.json")
        )
    )
    assert snooped["environ"], "the job reported its environment"
    # errors: a tag the registry does not have, a digest it does not have
    for bad in (
        tagged.model_copy(update={"tag": "missing"}),
        tagged.model_copy(update={"tag": "", "checksum": "sha256:" + "0" * 64}),
    ):
        try:
            failed = provider.consumer.start(data, rawcode=SNOOP, container=bad, environment="any")
            failed = provider.consumer.wait(failed.jobId, timeout=120)
            assert failed.status != JobStatus.FINISHED
            seen.append(failed.model_dump_json())
        except AtollError as exc:
            seen.append(str(exc))
    seen.append(caplog.text)
    # and everything the node keeps: its database, its jobs' directories, its image cache
    for path in provider.home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            seen.append(path.read_bytes().decode("latin-1"))
    everything = "\n".join(seen)
    assert name in everything  # the search does look at what the job and the node said
    for secret in secrets:
        assert secret not in everything
