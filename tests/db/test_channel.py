"""Changes passed between processes sharing a PostgreSQL store: what one sends, the others
hear at once, never itself nor a process on another store; a lost listening connection is
opened again and its owner told to read everything again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from atoll.db import connect
from atoll.db.channel import StoreChannel
from tests.conftest import _scratch_postgres


class Heard:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lost = 0
        self._changed = threading.Condition()

    def key(self, key: str) -> None:
        with self._changed:
            self.keys.append(key)
            self._changed.notify_all()

    def all(self) -> None:
        with self._changed:
            self.lost += 1
            self._changed.notify_all()

    def wait_for(self, condition: object, seconds: float = 10) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, seconds)  # type: ignore[arg-type]


@pytest.fixture
def channels(pg_db: sa.Engine) -> Iterator[tuple[StoreChannel, Heard, StoreChannel, Heard]]:
    made = []
    for _ in range(2):
        heard = Heard()
        channel = StoreChannel(pg_db, heard=heard.key, lost=heard.all)
        channel.start()
        made.append((channel, heard))
    try:
        yield made[0][0], made[0][1], made[1][0], made[1][1]
    finally:
        for channel, _ in made:
            channel.stop()


def test_a_change_sent_by_one_process_is_heard_by_the_other(
    channels: tuple[StoreChannel, Heard, StoreChannel, Heard],
) -> None:
    one, heard_one, two, heard_two = channels
    one.send("job-1")
    one.send("job-2")
    two.send("job-3")
    assert heard_two.wait_for(lambda: {"job-1", "job-2"} <= set(heard_two.keys))
    assert heard_one.wait_for(lambda: "job-3" in heard_one.keys)
    # nobody hears itself: it announced the change to its own waiters already
    assert "job-3" not in heard_two.keys
    assert not {"job-1", "job-2"} & set(heard_one.keys)


def test_another_store_on_the_same_server_hears_nothing(
    channels: tuple[StoreChannel, Heard, StoreChannel, Heard],
) -> None:
    one, _, _, heard_two = channels
    with _scratch_postgres() as url:
        elsewhere = connect(url)
        heard = Heard()
        channel = StoreChannel(elsewhere, heard=heard.key, lost=heard.all)
        channel.start()
        try:
            one.send("job-1")
            assert heard_two.wait_for(lambda: "job-1" in heard_two.keys)
            channel.send("job-9")
            assert not heard.wait_for(lambda: heard.keys, seconds=1)
            assert not heard_two.wait_for(lambda: "job-9" in heard_two.keys, seconds=1)
        finally:
            channel.stop()
            elsewhere.dispose()


def test_a_lost_listener_comes_back_and_has_everything_read_again(
    pg_db: sa.Engine, channels: tuple[StoreChannel, Heard, StoreChannel, Heard]
) -> None:
    one, _, _, heard_two = channels
    with pg_db.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'atoll-channel' AND datname = current_database() "
                "AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
            )
        ).all()
    assert killed
    # each listener whose connection was cut opened a new one and had its waiters read again
    assert heard_two.wait_for(lambda: heard_two.lost >= 1)
    one.send("after")
    assert heard_two.wait_for(lambda: "after" in heard_two.keys)
