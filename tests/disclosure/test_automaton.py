"""Both automatons a provider may have (the double array where its wheel is there, Rust's
``aho-corasick`` elsewhere) find the same matches."""

from __future__ import annotations

import random

import pytest

from atoll.disclosure import automaton
from atoll.disclosure.automaton import Patterns

pytestmark = pytest.mark.skipif(
    automaton._DOUBLE_ARRAY is None, reason="daachorse has no wheel for this machine"
)


def _text(rng: random.Random, alphabet: str, size: int) -> bytes:
    return "".join(rng.choice(alphabet) for _ in range(size)).encode()


def test_both_find_every_token_between_spaces_alike() -> None:
    rng = random.Random(3)
    for _ in range(200):
        tokens = {_text(rng, "ab1", rng.randint(1, 4)) for _ in range(rng.randint(0, 30))}
        patterns = [b" " + t + b" " for t in sorted(tokens)]
        haystack = b" " + _text(rng, "ab1 ", rng.randint(0, 200)) + b" "
        double, rust = Patterns(patterns, double_array=True), Patterns(patterns, double_array=False)
        assert sorted(double.overlapping(haystack)) == sorted(rust.overlapping(haystack))


def test_both_find_wrapped_pieces_one_after_another_alike() -> None:
    """The patterns a wrapped payload is looked for by, over a text's marks: the matches
    found one after another are the same (at most one of them ends at any byte)."""
    from atoll.disclosure.encoded import _PIECES

    rng = random.Random(4)
    patterns = [b"x" * 8 + b" " * k + b"x" * 8 for k in range(1, 5)]
    double, rust = Patterns(patterns, double_array=True), Patterns(patterns, double_array=False)
    for _ in range(300):
        marks = b"".join(
            rng.choice([b"x", b" "]) * rng.randint(1, 12) for _ in range(rng.randint(0, 40))
        )
        assert double.earliest(marks) == rust.earliest(marks) == _PIECES.earliest(marks)


def test_the_double_array_is_asked_for_only_where_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(automaton, "_DOUBLE_ARRAY", None)
    assert Patterns([b"a"]).overlapping(b"aa") == [(0, 1, 0), (1, 2, 0)]
    with pytest.raises(RuntimeError, match="not installed"):
        Patterns([b"a"], double_array=True)
