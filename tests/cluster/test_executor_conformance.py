"""The Executor conformance suite on the Dask backend: every job goes through a real Dask
scheduler to one of three ``atoll worker`` processes, over mutual TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atoll.cluster.certs import security
from atoll.cluster.executor import DaskExecutor
from atoll.engine.executor import Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import ExecutorConformance

from .conftest import Cluster


@pytest.fixture(scope="session")
def dask_executor(cluster: Cluster) -> Iterator[DaskExecutor]:
    executor = DaskExecutor(cluster.address, security(cluster.certs, "client"), job_uid=200_000)
    executor.check()
    yield executor
    executor.close()


class TestDaskConformance(ExecutorConformance):
    @pytest.fixture
    def executor(self, dask_executor: DaskExecutor) -> DaskExecutor:
        return dask_executor

    @pytest.fixture
    def runtime(self) -> Runtime:
        return Runtime(PYTHON)
