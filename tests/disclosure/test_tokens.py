"""Tokens: numbers compare by value, text by its lower case, names split at separators."""

from __future__ import annotations

from atoll.disclosure.tokens import distinctive, name_tokens, normal, spellings, tokens


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
