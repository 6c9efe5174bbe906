"""Tokens: numbers compare by value, text by its lower case, names split at separators."""

from __future__ import annotations

from pathlib import Path

from atoll.disclosure.tokens import (
    distinctive,
    joined_words,
    name_tokens,
    normal,
    spellings,
    tokens,
)


def test_numbers_have_one_spelling() -> None:
    assert normal("42.0") == normal("42") == normal("042") == "42"
    assert normal("52000.50") == "52000.5"
    assert normal("Alice") == "alice"


def test_a_printed_list_and_a_csv_row_give_the_same_tokens() -> None:
    assert tokens("['P10001', 'Ada Abbott0', 34.0]") == tokens("P10001,Ada Abbott0,34")


def test_email_addresses_and_dates_stay_whole() -> None:
    assert tokens("ada.abbott@example.org born 1990-01-02.") == [
        "ada.abbott@example.org",
        "born",
        "1990-01-02",
    ]


def test_file_names_split_at_separators_and_lose_their_extension() -> None:
    assert name_tokens("plots/P10001_age_34.png") == ["plots", "p10001", "age", "34"]
    assert "ada.abbott@example.org" in name_tokens("ada.abbott@example.org.csv")


def test_words_joined_in_a_file_name_by_case_or_hyphens_are_split() -> None:
    assert {"ada", "abbott123"} <= set(name_tokens("AdaAbbott123.txt"))
    assert {"ada", "abbott123"} <= set(name_tokens("Ada-Abbott123.txt"))
    assert {"p10001", "abbott123"} <= set(name_tokens("P10001Abbott123.csv"))
    assert {"p10001", "abbott123"} <= set(name_tokens("p10001.Abbott123.csv"))
    # a word's own capitals are no join
    assert "results" in name_tokens("RESULTS.csv")


def test_words_written_together_split_into_the_known_words_they_are_made_of() -> None:
    known = {"ada", "abbott123", "p10001", "north", "45"}
    assert joined_words("adaabbott123.txt", known) == ["ada", "abbott123"]
    assert joined_words("out/p10001abbott123_x.csv", known) == ["p10001", "abbott123"]
    # a run no split covers wholly, or one that is a known word, gives nothing
    assert joined_words("adaabbott1234.txt", known) == []
    assert joined_words("summary_by_region.csv", known) == []
    assert joined_words("north.csv", known) == []
    # a run longer than the longest read is not split
    assert joined_words("ada" * 30 + ".txt", known) == []


def test_spellings_of_a_number_include_trailing_zeros() -> None:
    assert spellings("12.5") == ["12.5", "12.50", "12.500"]
    assert spellings("-3") == ["-3", "-3.0", "-3.00"]
    assert spellings("north") == ["north"]


def test_distinctive_values_are_long_text_or_long_numbers() -> None:
    assert distinctive("p10001") and distinctive("123456")
    assert not distinctive("34") and not distinctive("f") and not distinctive("12.5")


def test_the_normal_forms_kept_are_bounded_in_bytes() -> None:
    """A job chooses its tokens: only short ones have their normal form kept, and no more
    than so many of them, so what the cache holds is bounded in bytes whatever the jobs
    write."""
    from atoll.disclosure import tokens as module

    module._cached_normal.cache_clear()
    long = "A" * (module.CACHED_LENGTH + 1)
    assert normal(long) == long.lower()
    assert module._cached_normal.cache_info().currsize == 0
    for i in range(module.CACHED_TOKENS + 10):
        normal(f"{i:0{module.CACHED_LENGTH}d}")
    assert module._cached_normal.cache_info().currsize == module.CACHED_TOKENS


def test_a_number_is_what_float_reads_as_one() -> None:
    """The pattern a number is told by reads what ``float`` reads, on the characters numbers
    are written with (``inf`` and ``nan`` are words, not numbers)."""
    import random

    from atoll.disclosure.tokens import NUMBER

    rng = random.Random(31)
    pieces = ["1", "0", "9", ".", "e", "E", "+", "-", "_"]
    numbers = 0
    for _ in range(20000):
        text = "".join(rng.choices(pieces, k=rng.randint(1, 7)))
        try:
            float(text)
            expected = "_" not in text
        except ValueError:
            expected = False
        assert (NUMBER.fullmatch(text) is not None) == expected, text
        numbers += expected
    assert numbers > 2000


def test_a_long_run_of_digits_that_is_no_number_is_told_at_once(tmp_path: Path) -> None:
    """A job that writes a cell or a token of a million digits and then a letter: its
    checks end (the number pattern reads it once, not once per split of its digits, which
    would take days). Run in a process of its own: a regular expression holds the
    interpreter's lock until it ends, so only a process can be stopped."""
    import subprocess
    import sys

    script = """
import sys
from pathlib import Path
from atoll.disclosure import Candidate, check_files
from atoll.disclosure.tables import is_number, numbers
from atoll.disclosure.tokens import normal
from atoll.models.output_policy import OutputChecks
hostile = "9" * 1_000_000 + "x"
assert (is_number(hostile), numbers([hostile, "1"]), normal(hostile)) == (False, None, hostile)
folder = Path(sys.argv[1])
out, data = folder / "out.csv", folder / "in.csv"
out.write_text(f"n,mean_x\\n{hostile},{hostile}\\n5,1.5\\n")
data.write_text("x,y\\n1,2\\n")
report = check_files([Candidate(0, "output", "out.csv", out)], [data], OutputChecks())
print(report.files[0].verdict)
"""
    # generous: it takes a second; reading the digits once per split of them took hours
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hold"
