"""The Executor conformance suite on the Dask backend: every job goes through a real Dask
scheduler to one of three ``atoll worker`` processes, over mutual TLS."""

from __future__ import annotations

import pytest

from atoll.cluster.executor import DaskExecutor
from atoll.engine.executor import Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import ExecutorConformance


class TestDaskConformance(ExecutorConformance):
    @pytest.fixture
    def executor(self, dask_executor: DaskExecutor) -> DaskExecutor:
        return dask_executor

    @pytest.fixture
    def runtime(self) -> Runtime:
        return Runtime(PYTHON)
