"""Mock data through the provider's API: a schema inferred from the real file, shown to the
owner and offered only once approved; an owner's own mock file; hostile requests."""

from __future__ import annotations

import csv
import io
import random

import httpx
import pytest

from atoll.errors import BadRequest, Conflict, Forbidden, NotFound
from tests.helpers import Running

THRESHOLD = 10


def real_csv(rows: int = 200, seed: int = 7) -> str:
    """People with an id, an age, a salary, a region (one of them rare) and a start date."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "age", "salary", "region", "start"])
    for i in range(rows):
        region = "Orkney" if i < 3 else rng.choice(["North", "South", "East", "West"])
        writer.writerow(
            [
                f"P{i:05d}",
                rng.randint(18, 90),
                f"{rng.uniform(15000, 90000):.2f}",
                region,
                f"2020-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ]
        )
    return out.getvalue()


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_generated_mock_discloses_no_row_rare_category_or_extreme(provider: Running) -> None:
    real = real_csv()
    did = provider.dataset(text=real, name="people")
    owner = provider.publisher

    view = owner.mock_infer(did)
    assert view.state == "proposed"
    assert view.offer is None
    columns = view.mockSchema["columns"] if view.mockSchema else []
    assert [c["name"] for c in columns] == ["id", "age", "salary", "region", "start"]

    offer = owner.mock_approve(did, view.schemaSha256, rows=300)
    mock = provider.consumer.mock_data(did).decode()

    real_rows = rows_of(real)
    mock_rows = rows_of(mock)
    assert mock_rows[0] == real_rows[0]  # the columns, in order
    assert offer.columns == real_rows[0]
    assert offer.rows == len(mock_rows) - 1 == 300
    # no real row, whole
    assert not {tuple(r) for r in mock_rows[1:]} & {tuple(r) for r in real_rows[1:]}
    # no category seen fewer times than the threshold
    regions = {r[3] for r in mock_rows[1:]}
    assert "Orkney" not in regions
    assert regions <= {"North", "South", "East", "West", ""}
    # no exact minimum or maximum of the real values: neither in the schema shown, nor as
    # the mock's own extremes, nor (numbers carry a decimal more) anywhere in the mock
    by_name = {c["name"]: c for c in columns}
    for col, name in ((1, "age"), (2, "salary")):
        values = [float(r[col]) for r in real_rows[1:]]
        made = [float(r[col]) for r in mock_rows[1:] if r[col]]
        assert by_name[name]["low"] < min(values) and by_name[name]["high"] > max(values)
        assert min(made) != min(values) and max(made) != max(values)
    salaries = {r[2] for r in real_rows[1:]}
    assert not salaries & {r[2] for r in mock_rows[1:]}
    dates = sorted(r[4] for r in real_rows[1:])
    made_dates = sorted(r[4] for r in mock_rows[1:] if r[4])
    assert by_name["start"]["low"] < dates[0] and by_name["start"]["high"] > dates[-1]
    assert made_dates[0] != dates[0] and made_dates[-1] != dates[-1]
    # types kept: integers stay integers, numbers numbers, dates dates
    for r in mock_rows[1:]:
        if r[1]:
            int(r[1])
        if r[2]:
            float(r[2])
        if r[4]:
            assert len(r[4]) == 10 and r[4][4] == "-"
    # ids are not real ids
    assert not {r[0] for r in mock_rows[1:]} & {r[0] for r in real_rows[1:]}


def test_nothing_is_offered_before_the_owner_approves(provider: Running) -> None:
    did = provider.dataset(text=real_csv(50))
    with pytest.raises(NotFound):
        provider.consumer.mock_offer(did)
    view = provider.publisher.mock_infer(did)
    with pytest.raises(NotFound):
        provider.consumer.mock_offer(did)
    with pytest.raises(NotFound):
        provider.consumer.mock_data(did)
    compute = httpx.get(f"{provider.url}/api/services/assets/{did}").json()["services"]
    assert all("mock" not in s for s in compute)

    offer = provider.publisher.mock_approve(did, view.schemaSha256)
    assert provider.consumer.mock_offer(did) == offer
    served = httpx.get(f"{provider.url}/api/services/assets/{did}").json()
    (compute_service,) = [s for s in served["services"] if s["type"] == "compute"]
    assert compute_service["mock"]["sha256"] == offer.sha256
    assert compute_service["mock"]["columns"] == ["id", "age", "salary", "region", "start"]
    assert str(provider.data) not in str(served)


def test_approval_names_the_schema_that_was_shown(provider: Running) -> None:
    did = provider.dataset(text=real_csv(50))
    provider.publisher.mock_infer(did)
    with pytest.raises(Conflict):
        provider.publisher.mock_approve(did, "0" * 64)
    with pytest.raises(NotFound):
        provider.consumer.mock_offer(did)


def test_only_the_owner_infers_sees_and_approves(provider: Running) -> None:
    did = provider.dataset(text=real_csv(50))
    view = provider.publisher.mock_infer(did)
    with pytest.raises(Forbidden):
        provider.consumer.mock_infer(did)
    with pytest.raises(Forbidden):
        provider.consumer.mock_schema(did)
    with pytest.raises(Forbidden):
        provider.consumer.mock_approve(did, view.schemaSha256)
    with pytest.raises(Forbidden):
        provider.consumer.mock_attach(did, "a,b\n1,2\n")
    with pytest.raises(NotFound):
        provider.consumer.mock_offer(did)


def test_an_uploaded_mock_is_offered_with_its_checksum(provider: Running) -> None:
    did = provider.dataset(text=real_csv(50))
    content = "id,age\nX1,40\nX2,50\n"
    offer = provider.publisher.mock_attach(did, content)
    assert offer.source == "uploaded"
    assert (offer.columns, offer.rows, offer.size) == (["id", "age"], 2, len(content))
    assert provider.consumer.mock_data(did) == content.encode()
    view = provider.publisher.mock_schema(did)
    assert view.state == "offered" and view.offer == offer


def test_hostile_requests_get_clear_client_errors(provider: Running) -> None:
    did = provider.dataset(text=real_csv(50))
    for bad in ("did:atoll:nope", "x" * 81, "did:atoll:%2e%2e"):
        r = httpx.get(f"{provider.url}/api/services/assets/{bad}/mock")
        assert r.status_code in (400, 404), r.text
        assert "error" in r.json()
    with pytest.raises(NotFound):
        provider.publisher.mock_infer("did:atoll:" + "0" * 64)
    for not_csv in ("", "\x00 not text", "\n\n"):
        with pytest.raises(BadRequest, match="CSV text"):
            provider.publisher.mock_attach(did, not_csv)
    with pytest.raises(BadRequest):
        provider.publisher.mock_infer(did, file_index=5)
    huge = httpx.put(
        f"{provider.url}/api/services/assets/{did}/mock",
        content=b'{"content": "' + b"a" * (4 << 20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert "error" in huge.json()
    big = "a,b\n" + "1,2\n" * (140 * 1024)  # under the body limit, over the mock limit
    with pytest.raises(BadRequest, match="limited"):
        provider.publisher.mock_attach(did, big)
    other = provider.dataset(name="binary")
    (path,) = provider.data.glob("*/binary-0.csv")
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadRequest, match="cannot be read as CSV"):
        provider.publisher.mock_infer(other)
