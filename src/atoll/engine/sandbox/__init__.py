"""The bubblewrap + cgroups executor, the default backend."""

from atoll.engine.sandbox.devices import gpu_devices
from atoll.engine.sandbox.execution import SandboxExecution
from atoll.engine.sandbox.executor import SandboxExecutor
from atoll.engine.sandbox.ids import readable_by

__all__ = ["SandboxExecution", "SandboxExecutor", "gpu_devices", "readable_by"]
