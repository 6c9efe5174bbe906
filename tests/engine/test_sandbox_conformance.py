"""The Executor conformance suite on the bubblewrap sandbox."""

from __future__ import annotations

import pytest

from atoll.engine.executor import Runtime
from atoll.engine.sandbox import SandboxExecutor

from .conftest import PYTHON
from .executor_conformance import ExecutorConformance


class TestSandboxConformance(ExecutorConformance):
    @pytest.fixture
    def executor(self, sandbox: SandboxExecutor) -> SandboxExecutor:
        return sandbox

    @pytest.fixture
    def runtime(self) -> Runtime:
        return Runtime(PYTHON)
