"""The catalogue on every store backend: DDOs out, locations kept private, search."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.catalog.publish import build_ddo, inspect_files
from atoll.catalog.store import AssetStore
from atoll.errors import BadRequest, Conflict, NotFound
from atoll.models.ddo import ComputePolicy, Metadata

OWNER = "0x" + "ab" * 20


def publish(store: AssetStore, tmp_path: Path, name: str, tags: list[str], body: bytes = b"x"):
    f = tmp_path / f"{name}.csv"
    f.write_bytes(body)
    files = inspect_files([str(f)])
    meta = Metadata(name=name, description=f"about {name}", type="dataset", tags=tags)
    ddo = build_ddo(OWNER, meta, files, "http://p", ComputePolicy(), 60)
    store.add(ddo, files)
    return ddo, f


def test_round_trip_and_private_locations(db: sa.Engine, tmp_path: Path) -> None:
    store = AssetStore(db)
    ddo, f = publish(store, tmp_path, "rain", ["weather"])
    got = store.get(ddo.id)
    assert got == ddo
    assert str(f) not in got.model_dump_json()
    assert str(tmp_path) not in got.model_dump_json()
    [private] = store.files(ddo.id)
    assert private.location == str(f.resolve())
    assert got.files[0].contentLength == 1


def test_same_content_same_did_refused_twice(db: sa.Engine, tmp_path: Path) -> None:
    store = AssetStore(db)
    ddo, f = publish(store, tmp_path, "rain", [])
    files = inspect_files([str(f)])
    again = build_ddo(OWNER, ddo.metadata, files, "http://p", ComputePolicy(), 60)
    assert again.id == ddo.id
    with pytest.raises(Conflict):
        store.add(again, files)


def test_search_by_text_tag_and_type(db: sa.Engine, tmp_path: Path) -> None:
    store = AssetStore(db)
    rain, _ = publish(store, tmp_path, "rainfall", ["Weather", "uk"])
    publish(store, tmp_path, "traffic", ["roads"], b"y")
    publish(store, tmp_path, "100%_match", ["misc"], b"z")
    total, found = store.search(text="RAIN")
    assert (total, [d.id for d in found]) == (1, [rain.id])
    assert [d.id for d in store.search(tag="weather")[1]] == [rain.id]
    assert store.search(text="rain", tag="roads")[0] == 0
    assert store.search(type="algorithm")[0] == 0
    assert store.search()[0] == 3
    # LIKE wildcards in a query match themselves only
    assert store.search(text="%")[0] == 1
    assert store.search(text="_")[0] == 1


def test_search_words_are_found_in_tags(db: sa.Engine, tmp_path: Path) -> None:
    store = AssetStore(db)
    sales, _ = publish(store, tmp_path, "Sales 2026", ["Retail", "uk"])
    rain, _ = publish(store, tmp_path, "rainfall", ["weather", "uk"], b"y")
    publish(store, tmp_path, "retail_prices", ["shops"], b"z")

    def found(text: str) -> set[str]:
        total, ddos = store.search(text=text)
        assert total == len(ddos)
        return {d.id for d in ddos}

    # the tag alone finds it, whatever its case, and so does a part of it
    assert sales.id in found("retail")
    assert found("RETAIL") == found("retail")
    assert sales.id in found("tail")
    assert found("weather") == {rain.id}
    # every word must be found, each in the text or a tag
    assert found("sales uk") == {sales.id}
    assert found("rain uk") == {rain.id}
    assert found("sales weather") == set()
    # a tag is matched as text, never as a LIKE pattern
    assert found("u_") == set()


def test_unknown_did(db: sa.Engine) -> None:
    with pytest.raises(NotFound):
        AssetStore(db).get("did:atoll:00")


def test_inspect_files_errors_name_no_path(tmp_path: Path) -> None:
    missing = tmp_path / "secret-location.csv"
    for bad in ([str(missing)], ["relative.csv"], [str(tmp_path)], []):
        with pytest.raises(BadRequest) as err:
            inspect_files(bad)
        assert "secret-location" not in err.value.message
        assert str(tmp_path) not in err.value.message
