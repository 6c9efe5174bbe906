"""Text spelled out a character at a time is joined back into its words."""

from __future__ import annotations

import pytest

from atoll.disclosure.spaced import spelled_out


def test_characters_one_separator_apart_are_words_and_wider_gaps_part_them() -> None:
    record = "P10042,Ada Abbott,ada@example.org"
    spaced = " ".join(record)
    assert spelled_out(f"start {spaced} end".encode()) == [(1, "P10042 Ada Abbott ada@example.org")]


def test_one_character_per_line_is_joined_back_with_its_line() -> None:
    text = "header line\n" + "\n".join("P10042,Ada Abbott")
    assert spelled_out(text.encode()) == [(2, "P10042 Ada Abbott")]


def test_a_text_that_starts_or_ends_spelled_out_is_read_whole() -> None:
    assert spelled_out(b"a b c d") == [(1, "abcd")]
    assert spelled_out(b"loss 0.2 a b c d") == [(1, "abcd")]
    assert spelled_out(b"a b c d e then words") == [(1, "abcde")]


def test_ordinary_text_has_nothing_spelled_out() -> None:
    log = b"step 1 loss 0.2201 accuracy 0.9312 lr 0.001\nregion north has 1203 records\n"
    assert spelled_out(log * 100) == []
    assert spelled_out(b"x, y and z are 3 letters") == []


def test_a_stretch_too_long_to_join_back_is_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from atoll.disclosure import spaced

    monkeypatch.setattr(spaced, "MAX_SPELLED", 100)
    assert spelled_out(("intro\n" + " ".join("P10042" * 40)).encode()) == [(2, None)]
