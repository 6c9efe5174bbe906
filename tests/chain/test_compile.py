"""Compiling the contracts and the artifact cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atoll.chain import compile as comp


def test_every_contract_compiles_to_abi_and_bytecode(contract_cache: Path) -> None:
    arts = comp.load_artifacts(cache_dir=contract_cache)
    assert set(arts) == set(comp.CONTRACT_NAMES)
    for art in arts.values():
        assert art.bytecode and art.abi
        assert art.compiler_version == comp.compiler_version()
        assert art.compiler_version.startswith("0.4.")


def test_artifacts_are_cached_by_source_and_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comp, "_memo", {})
    art = comp.load_artifact("TemplateStore", cache_dir=tmp_path)
    files = list(tmp_path.glob("TemplateStore-*.json"))
    assert len(files) == 1
    assert comp.Artifact.from_json(json.loads(files[0].read_text())) == art

    # a second load reads the cache: the compiler is not run
    monkeypatch.setattr(comp, "_memo", {})

    def no_compile(name: str, source: str) -> comp.Artifact:
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(comp, "compile_source", no_compile)
    assert comp.load_artifact("TemplateStore", cache_dir=tmp_path) == art

    # another compiler version is another key
    monkeypatch.setattr(comp, "_memo", {})
    monkeypatch.setattr(comp, "compiler_version", lambda: "0.4.999")
    with pytest.raises(AssertionError, match="compiled although cached"):
        comp.load_artifact("TemplateStore", cache_dir=tmp_path)


def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comp, "_memo", {})
    art = comp.load_artifact("LockPaymentCondition", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("LockPaymentCondition-*.json")
    entry.write_text("{not json")
    monkeypatch.setattr(comp, "_memo", {})
    assert comp.load_artifact("LockPaymentCondition", cache_dir=tmp_path) == art


def test_cache_dir_defaults_under_atoll_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOLL_HOME", str(tmp_path))
    assert comp.default_cache_dir() == tmp_path / "cache" / "contracts"
    monkeypatch.delenv("ATOLL_HOME")
    assert comp.default_cache_dir() == Path.home() / ".atoll" / "cache" / "contracts"
