"""The bubblewrap + cgroups executor, the default backend."""

from atoll.engine.sandbox.executor import SandboxExecution, SandboxExecutor

__all__ = ["SandboxExecution", "SandboxExecutor"]
