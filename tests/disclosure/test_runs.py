"""Stretches found by their marks."""

from __future__ import annotations

from atoll.disclosure.runs import marked_runs


def test_each_stretch_starts_at_the_needle_and_ends_at_a_space_or_the_end() -> None:
    assert marked_runs(b"xx xxxx x xxx", b"xxx") == [(3, 7), (10, 13)]


def test_no_needle_no_stretch() -> None:
    assert marked_runs(b"xx x x", b"xxx") == []
