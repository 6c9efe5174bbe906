"""The automaton finds in a whole text what splitting each line into tokens finds."""

from __future__ import annotations

import pytest

from atoll.disclosure import matcher
from atoll.disclosure.matcher import line_hits
from atoll.disclosure.tokens import parts
from tests.disclosure.texts import texts

UNIVERSE = frozenset(
    {"north", "count", "120", "3", "p10001", "ada.abbott@example.org", "1957-03-02", "50"}
    | {"12", "f", "m", "café", "deadbeef", "0.123456789", "2.718281828459045.", "a", "g"}
)


def _by_line(text: str) -> dict[int, set[str]]:
    found = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if shared := UNIVERSE.intersection(parts(line)):
            found[number] = set(shared)
    return found


def test_hits_are_the_tokens_each_line_splits_into(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    checked = 0
    for text in [*texts(300), "North,NORTH;(north)\n\n3 3\tf|m\x1fa:b\n", "north", ""]:
        if not text.isascii() or any(c in text for c in "\r\x0b\x0c\x1c\x1d\x1e\x00"):
            continue
        checked += 1
        assert line_hits(UNIVERSE, text.encode()) == _by_line(text), text
    assert checked > 100


def test_a_token_inside_another_is_not_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    assert line_hits(UNIVERSE, b"north1 xnorth 1203 0.1234567891 north.\nnorth") == {2: {"north"}}


def test_short_texts_are_left_to_the_split_until_an_automaton_is_built() -> None:
    tokens = frozenset({"only", "here"})
    assert line_hits(tokens, b"only here") is None
    assert line_hits(tokens, b"x " * matcher.MIN_TEXT + b"\nonly") == {2: {"only"}}
    assert line_hits(tokens, b"only here") == {1: {"only", "here"}}


def test_too_many_tokens_are_left_to_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    monkeypatch.setattr(matcher, "MAX_TOKENS", 1)
    assert line_hits(frozenset({"many", "tokens"}), b"many tokens") is None


def test_a_search_on_its_own_thread_finds_what_the_search_in_place_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    for text in [t for t in texts(50) if t.isascii() and "\r" not in t]:
        search = matcher.LineSearch(UNIVERSE, text.encode(), len)
        assert search.result() == line_hits(UNIVERSE, text.encode())
        # and what it also did, with the text as the automatons read it
        assert search.also() == len(matcher.padded(text.encode())) == len(text) + 2


def test_what_stops_a_search_on_its_own_thread_is_raised_where_its_hits_are_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a check that fails must hold the file (the caller's fail-closed path), not pass it
    # with no hits
    def broken(tokens: frozenset[str], size: int) -> None:
        raise MemoryError("no room for the automaton")

    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    monkeypatch.setattr(matcher, "_automaton", broken)
    search = matcher.LineSearch(UNIVERSE, b"north 120\n", len)
    with pytest.raises(MemoryError, match="no room"):
        search.result()
    with pytest.raises(MemoryError, match="no room"):
        search.also()
