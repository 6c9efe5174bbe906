"""Compile the Vyper contracts shipped in ``vyper/`` and cache the artifacts.

Compiling all contracts takes a few seconds, so the ABI and bytecode are cached
as JSON in a directory (default ``$ATOLL_HOME/cache/contracts``, ``ATOLL_HOME``
defaulting to ``~/.atoll``), keyed by a hash of the source, the compiler version
and the compiler settings: editing a contract or upgrading Vyper recompiles it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent / "vyper"

#: Every contract the chain layer deploys, in deployment order.
CONTRACT_NAMES: tuple[str, ...] = (
    "AtollToken",
    "DIDRegistry",
    "TemplateStore",
    "AgreementStore",
    "LockPaymentCondition",
    "ComputeExecutionCondition",
    "EscrowPaymentCondition",
    "ComputeTemplate",
    "AccessCondition",
    "AccessTemplate",
)

#: The EVM version the bytecode targets; py-evm's CancunVM and anvil both run it.
EVM_VERSION = "cancun"

_lock = threading.Lock()
_memo: dict[tuple[str, str], Artifact] = {}


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI and deployable (init) bytecode."""

    name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: bytes
    source_hash: str
    compiler_version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abi": list(self.abi),
            "bytecode": "0x" + self.bytecode.hex(),
            "source_hash": self.source_hash,
            "compiler_version": self.compiler_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            name=str(data["name"]),
            abi=tuple(data["abi"]),
            bytecode=bytes.fromhex(str(data["bytecode"]).removeprefix("0x")),
            source_hash=str(data["source_hash"]),
            compiler_version=str(data["compiler_version"]),
        )


def default_cache_dir() -> Path:
    """``$ATOLL_HOME/cache/contracts``; ``ATOLL_HOME`` defaults to ``~/.atoll``."""
    from atoll.home import default_home

    return default_home() / "cache" / "contracts"


def compiler_version() -> str:
    """The installed vyper version (read from package metadata: no import)."""
    return importlib.metadata.version("vyper")


def contract_source(name: str) -> str:
    path = CONTRACTS_DIR / f"{name}.vy"
    if not path.is_file():
        raise KeyError(f"no contract named {name!r} in {CONTRACTS_DIR}")
    return path.read_text(encoding="utf-8")


def cache_key(name: str, source: str, version: str) -> str:
    h = hashlib.sha256()
    for part in (name, version, EVM_VERSION, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_source(name: str, source: str) -> Artifact:
    """Compile one contract with the installed vyper package (no cache)."""
    import vyper  # type: ignore[import-untyped]
    from vyper.compiler.settings import Settings  # type: ignore[import-untyped]

    out = vyper.compile_code(
        source,
        contract_path=f"{name}.vy",
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    version = compiler_version()
    return Artifact(
        name=name,
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(str(out["bytecode"]).removeprefix("0x")),
        source_hash=cache_key(name, source, version),
        compiler_version=version,
    )


def load_artifact(name: str, cache_dir: Path | str | None = None) -> Artifact:
    """The artifact of contract ``name``, compiled on first use and cached on disk."""
    source = contract_source(name)
    version = compiler_version()
    key = cache_key(name, source, version)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with _lock:
        memo = _memo.get((name, key))
        if memo is not None:
            return memo
        path = directory / f"{name}-{key[:24]}.json"
        artifact: Artifact | None = None
        if path.is_file():
            try:
                artifact = Artifact.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                artifact = None  # a damaged cache entry is rebuilt below
            if artifact is not None and artifact.source_hash != key:
                artifact = None
        if artifact is None:
            artifact = compile_source(name, source)
            _write_atomic(path, json.dumps(artifact.to_json(), indent=1))
        _memo[(name, key)] = artifact
        return artifact


def load_artifacts(
    names: Iterable[str] = CONTRACT_NAMES, cache_dir: Path | str | None = None
) -> dict[str, Artifact]:
    """Artifacts of ``names`` (all contracts by default), compiling what is not cached."""
    return {name: load_artifact(name, cache_dir) for name in names}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
