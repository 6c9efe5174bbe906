"""Input profiles and the streaming scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.disclosure.echo import OutputIndex
from atoll.disclosure.inputs import Profile, profile, scan
from atoll.disclosure.tokens import tokens
from atoll.models.output_policy import OutputChecks


def test_identifiers_are_marked_guessed_by_name_and_by_unique_values(dataset: Path) -> None:
    guessed = profile(dataset, OutputChecks())
    # patient_id, name, email, dob by name; income's values all differ, but so do any
    # measure's with decimals, which are no identifier
    assert sorted(guessed.columns.identifiers) == [0, 1, 2, 3]
    assert guessed.numeric == {6, 7}
    assert guessed.digits == 7
    marked = profile(
        dataset,
        OutputChecks(
            identifiers=["Diagnosis"], quasiIdentifiers=["sex", "age"], guessIdentifiers=False
        ),
    )
    assert sorted(marked.columns.identifiers) == [8]
    assert sorted(marked.columns.quasi) == [4, 6]


def test_a_column_whose_values_all_differ_is_an_identifier(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("ref,region\n" + "".join(f"K{i * 7919 % 10007},north\n" for i in range(40)))
    assert profile(path, OutputChecks()).columns.identifiers == {0}


def test_a_file_that_is_not_a_table_is_read_by_lines(tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_text("patient P10001 seen on 2024-01-02 in clinic seven\n")
    prof = profile(path, OutputChecks())
    assert prof.header == []
    index = OutputIndex()
    index.add(0, "line 1", tokens("log: patient P10001 seen on 2024-01-02 in clinic seven"))
    result = scan([path], [prof], index, [[]], OutputChecks())
    assert [(e.input, e.how) for e in result.echoes] == [(0, "in full")]


def test_a_common_identifier_value_alone_is_no_echo(tmp_path: Path) -> None:
    # a region named in a column called region_name is an identifier by name, but a
    # value that many records share singles nobody out
    path = tmp_path / "in.csv"
    path.write_text("region_name,age\n" + "".join(f"Northwood,{20 + i}\n" for i in range(30)))
    prof = profile(path, OutputChecks())
    assert 0 in prof.columns.identifiers
    index = OutputIndex()
    index.add(0, "row 2", tokens("Northwood,1234"))
    assert scan([path], [prof], index, [[]], OutputChecks()).echoes == []


def test_the_scan_hashes_every_input(dataset: Path) -> None:
    import hashlib

    result = scan(
        [dataset], [profile(dataset, OutputChecks())], OutputIndex(), [[]], OutputChecks()
    )
    assert result.sha256 == [hashlib.sha256(dataset.read_bytes()).hexdigest()]


def test_a_changed_input_is_read_again(tmp_path: Path) -> None:
    from atoll.disclosure.inputs import load

    path = tmp_path / "in.csv"
    path.write_text("ref,region\nK1,north\n")
    first = load(path, profile(path, OutputChecks()))
    path.write_text("ref,region\nK1,north\nK2,south\n")
    second = load(path, profile(path, OutputChecks()))
    assert first is not None and second is not None
    assert len(first.records) == 1 and len(second.records) == 2
    assert load(path, profile(path, OutputChecks())) is second


def test_an_input_is_known_by_its_file_whatever_path_reaches_it(tmp_path: Path) -> None:
    """A file reached by a link is the file kept, not another to parse; a new version of it
    (rewritten in place with the same size, its times set back) is read again."""
    import os

    from atoll.disclosure.inputs import load

    path = tmp_path / "in.csv"
    path.write_text("ref,region\nK1,north\n")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    first = load(path, profile(path, OutputChecks()))
    assert load(link, profile(link, OutputChecks())) is first
    stat = path.stat()
    path.write_text("ref,region\nK2,south\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = load(path, profile(path, OutputChecks()))
    assert again is not first and again is not None and again.records == [["K2", "south"]]


@pytest.mark.parametrize(
    ("first", "second", "token"),
    [("k{i}x", "k{i}x", "k7x"), ("1{i}04", "1{i}04.0", "1704")],
)
def test_a_value_two_fields_share_is_two_fields_in_a_row_that_holds_it_once(
    tmp_path: Path, first: str, second: str, token: str
) -> None:
    # a file name that holds one token, which is two fields of a record (as written, or
    # spelled apart): no other output row pairs it with anything, and still the record is
    # compared
    path = tmp_path / "in.csv"
    path.write_text(
        "code,alias,age\n"
        + "".join(f"{first.format(i=i)},{second.format(i=i)},{20 + i}\n" for i in range(30))
    )
    checks = OutputChecks(guessIdentifiers=False)
    prof = profile(path, checks)
    index = OutputIndex()
    index.add(0, "name", [token], name=True)
    index.add(0, "line 1", ["21", "south"])
    result = scan([path], [prof], index, [[]], checks)
    assert [(e.row, e.how) for e in result.echoes] == [(0, "in several fields")]


def test_the_records_holding_some_tokens_are_found_by_their_postings(dataset: Path) -> None:
    import random

    from atoll.disclosure.inputs import load

    loaded = load(dataset, profile(dataset, OutputChecks()))
    assert loaded is not None
    every = sorted(set().union(*loaded.parts))
    rng = random.Random(5)
    for size in (0, 1, 2, 5, 40):
        words = set(rng.sample(every, size)) | {"not-in-the-input"}
        for least in (1, 2, 3):
            expected = {i for i, p in enumerate(loaded.parts) if len(words & p) >= least}
            assert loaded.holding(words, least) == expected


def test_whole_records_found_by_their_rarest_tokens_are_those_counted_by_all() -> None:
    import random

    from atoll.disclosure.inputs import Loaded, _parsed

    rng = random.Random(7)
    vocabulary = ["north", "south", "f", "m", "na", "null", "", "none", "42", "a b", "x"]
    records = [
        [rng.choice([*vocabulary, f"p{i}", f"v{i % 7}"]) for _ in range(rng.randint(0, 6))]
        for i in range(400)
    ]
    sets, doubled = _parsed(records)
    loaded = Loaded("", records, sets, _doubled=doubled)
    every = sorted(set().union(*sets))
    needed = loaded.needed()
    for size in (0, 1, 3, 8, 20):
        for _ in range(10):
            words = set(rng.sample(every, min(size, len(every))))
            for least in (1, 2, 3):
                expected = {
                    i
                    for i, p in enumerate(sets)
                    if len(words & p) >= least and len(words & p) >= needed[i]
                }
                assert loaded.holding(words, least, whole=True) == expected, (words, least)


def test_a_whole_record_less_its_nulls_in_one_row_is_found_among_partial_pairs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "code,alias,note,age\n" + "".join(f"w{i}x,v{i}y,na,{20 + i}\n" for i in range(30))
    )
    checks = OutputChecks(guessIdentifiers=False)
    prof = profile(path, checks)
    index = OutputIndex()
    index.add(0, "row 2", ["w3x", "27"])
    index.add(0, "row 3", ["w7x", "v7y", "27"])
    index.add(0, "row 4", ["v9y", "north"])
    result = scan([path], [prof], index, [[]], checks)
    assert [(e.row, e.how) for e in result.echoes] == [(1, "in full")]


def test_every_token_of_a_kept_input_has_its_normal_form_kept(dataset: Path) -> None:
    """The normal forms kept with a parsed input, which the outputs' tokens are spelled by,
    are each token's own, for every token the input holds in any spelling."""
    from atoll.disclosure.echo import written_backwards
    from atoll.disclosure.inputs import load
    from atoll.disclosure.tokens import normal, spellings

    loaded = load(dataset, profile(dataset, OutputChecks()))
    assert loaded is not None
    normals = loaded.normals()
    assert normals.keys() == loaded.universe()
    words: set[str] = set().union(*loaded.parts)
    # a token written backwards is spelled as the token: the rest are each their own
    backwards = {b: w for w in words if (b := written_backwards(w)) and b not in words}
    forwards = loaded.universe() - backwards.keys()
    assert backwards and all(normals[b] == normal(w) for b, w in backwards.items())
    assert all(normals[t] == normal(t) for t in forwards)
    # a spelling of a normal form is normal in that form: what lets them be kept unasked
    assert all(normal(s) == normal(t) for t in forwards for s in spellings(normal(t)))


def test_a_kept_input_s_spellings_are_those_each_token_is_asked_for() -> None:
    """The universe, normal forms and respellings of a parsed input, where tokens that are
    their own only spelling are known without asking :func:`normal`, are what asking it of
    every token gives."""
    import random

    from atoll.disclosure.echo import written_backwards
    from atoll.disclosure.inputs import Loaded
    from atoll.disclosure.tokens import normal, parts, spellings

    def asked(words: set[str]) -> tuple[set[str], dict[str, str], dict[str, set[str]]]:
        every, normals, respellings = set(words), {}, {}
        for w in words:
            n = normal(w)
            every.update(spellings(n))
            normals.update(dict.fromkeys(spellings(n), n))
            normals[w] = n
            if n != w:
                respellings.setdefault(n, set()).add(w)
        # and each word's spelling backwards, where it is no other token's
        for w in words:
            b = written_backwards(w)
            if b is not None and b not in every:
                every.add(b)
                normals[b] = normals[w]
        every.discard("")
        normals.pop("", None)
        respellings.pop("", None)
        return every, normals, respellings

    pieces = [
        "north", "P10000", "a.", "a:", ":a", ".5", "1.", "007", "-3", "+4", "1e5", "12.50",
        "x.y", "nan", "inf", "-", ".", ":", "a-b", "2024-01-02", "ä", "İx", "person@ex.org",
        "42", "42.0", "42.00", "0.10", "_x", "x_",
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(300):
        records = [
            frozenset(parts(" ".join(rng.choices(pieces, k=rng.randint(0, 6)))))
            for _ in range(rng.randint(1, 5))
        ]
        loaded = Loaded("", [], records)
        words: set[str] = set().union(*records)
        every, normals, respellings = asked(words)
        assert loaded.universe() == every
        assert loaded.normals() == normals
        assert {n: set(w) for n, w in loaded.respellings().items()} == respellings
        assert loaded.abnormal() == {t for t, n in normals.items() if t != n}


def test_prepared_inputs_are_not_parsed_again_by_the_checks(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What :func:`prepare` parsed is what a job's checks read: they parse nothing more; an
    input too large to keep is left to them (streamed), not read for nothing."""
    from atoll import disclosure
    from atoll.disclosure import Candidate, check_files, inputs

    checks = OutputChecks()
    assert disclosure.prepare([dataset], checks) == 1
    assert inputs.kept(dataset)
    assert disclosure.prepare([dataset], checks) == 0

    def parsed_again(*args: object) -> object:
        raise AssertionError("parsed again")

    monkeypatch.setattr(inputs, "_parsed", parsed_again)
    # and what the records are looked up by was built with it
    (loaded,) = [v for k, v in inputs._loaded.items() if k == inputs._identity(dataset)]
    assert loaded._universe is not None
    assert loaded._rarest is not None or loaded._postings is not None
    # and its records' lengths and its identifiers' automaton, which only a job's texts
    # are searched with
    assert loaded._shapes is not None
    assert loaded._glued
    out = tmp_path / "summary.json"
    out.write_text('{"n": 5000, "mean": 54.2}\n')
    report = check_files([Candidate(0, "output", "summary.json", out)], [dataset], checks)
    assert report.files[0].verdict == "pass"

    big = tmp_path / "big.csv"
    big.write_text(dataset.read_text())
    monkeypatch.setattr(inputs, "CACHE_FILE", 10)
    monkeypatch.setattr(inputs, "_records", parsed_again)
    assert disclosure.prepare([big], checks) == 0
    assert not inputs.kept(big)


def _with_tokens(
    path: Path, prof: Profile, index: OutputIndex, counting: bool
) -> tuple[list[tuple[list[str], frozenset[str]]], str]:
    """The records of a streamed input that hold a rare token of ``index``, and its
    sha256: as the scan finds them, or (``counting``) as reading the whole file does."""
    import hashlib

    from atoll.disclosure import inputs

    rare = {s for s in index.spellings if index.rare(index.spelled[s])}
    if counting:
        # the reference: every record read in full, and the whole file hashed
        every = [(r, inputs._record_parts(r)) for r in inputs._all_records(path, prof)]
        found = [(r, t) for r, t in every if not rare.isdisjoint(t)]
        return found, hashlib.sha256(path.read_bytes()).hexdigest()
    records, sha256, loaded = inputs._source(path, prof, index.spellings, index)
    assert loaded is None
    # the records the scan looks at: those with a token rare enough in the outputs
    found = [(r, t) for r, t in records if not rare.isdisjoint(t)]
    return found, sha256()


@pytest.mark.parametrize("max_tokens", [1 << 18, 0])
def test_a_streamed_input_s_searched_records_are_those_its_full_read_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_tokens: int
) -> None:
    """A streamed input whose records need not all be counted is searched for the outputs'
    tokens chunk by chunk and only the lines found are read: the records it yields that
    hold an output's token, and its sha256, are the full read's, whatever the file holds
    (quoted fields across lines and chunks, carriage returns, other scripts, blank lines,
    no header) and wherever its chunks end (``max_tokens``: every chunk searched by the
    automaton, or none, with too many tokens to build one over)."""
    import csv
    import hashlib
    import random

    from atoll.disclosure import inputs, matcher

    monkeypatch.setattr(matcher, "MAX_TOKENS", max_tokens)
    monkeypatch.setattr(inputs, "CACHE_FILE", 0)  # every input streamed
    cells = [
        "north", "South", "P100", "42", "42.0", "12.50", "a b", "x,y", 'say "hi"', "two\nlines",
        "", "Zoë", "ÉCOLE", "école", "na", "tab\there", "semi;colon", "end.", "-7", "north-east",
    ]  # fmt: skip
    rng = random.Random(11)
    # a line whose only token found is its first, after a line that ends in one
    path = tmp_path / "ends.csv"
    path.write_text("id,name\nx,north\nnorth,y\n")
    index = OutputIndex()
    index.add(0, "row 1", ["north", "name"])
    prof = inputs.profile(path, OutputChecks())
    assert len(_with_tokens(path, prof, index, counting=False)[0]) == 2
    assert _with_tokens(path, prof, index, counting=False) == _with_tokens(
        path, prof, index, counting=True
    )
    for trial in range(60):
        delimiter = rng.choice([",", ",", "\t", ";"])
        rows = [[rng.choice(cells) for _ in range(rng.randint(1, 5))] for _ in range(40)]
        path = tmp_path / f"in{trial}.csv"
        with path.open("w", newline="") as f:
            csv.writer(f, delimiter=delimiter, lineterminator=rng.choice(["\n", "\r\n"])).writerows(
                [["id", "name", "note"], *rows]
            )
        if rng.random() < 0.2:
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r", 1))
        monkeypatch.setattr(inputs, "SEARCHED_CHUNK", rng.choice([16, 64, 300, 1 << 20]))
        prof = inputs.profile(path, OutputChecks())
        if rng.random() < 0.3:
            prof.header = []  # every line a record
            prof.delimiter = rng.choice([None, prof.delimiter])
        index = OutputIndex()
        index.add(
            0, "row 1", rng.sample(["north", "42", "12.5", "p100", "école", "hi", "x", "name"], 3)
        )
        if rng.random() < 0.5:
            # a token in too many output rows to look records up by
            for row in range(2, 80):
                index.add(0, f"row {row}", ["north", str(row)])

        searched = _with_tokens(path, prof, index, counting=False)
        full = _with_tokens(path, prof, index, counting=True)
        assert searched == full, path.read_bytes()
        assert full[1] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_check_waits_for_the_input_another_thread_prepares(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that ends while its dataset is being prepared waits for that parse rather than
    parse it a second time alongside it."""
    import threading

    from atoll import disclosure
    from atoll.disclosure import Candidate, check_files, inputs

    parsed = inputs._parsed
    calls: list[int] = []
    started, go = threading.Event(), threading.Event()

    def slow(records: list[list[str]]) -> object:
        calls.append(threading.get_ident())
        started.set()
        go.wait(30)
        return parsed(records)

    monkeypatch.setattr(inputs, "_parsed", slow)
    checks = OutputChecks()
    preparer = threading.Thread(target=disclosure.prepare, args=([dataset], checks))
    preparer.start()
    assert started.wait(30)
    out = tmp_path / "summary.json"
    out.write_text('{"n": 5000, "mean": 54.2}\n')
    reports: list[object] = []
    checker = threading.Thread(
        target=lambda: reports.append(
            check_files([Candidate(0, "output", "summary.json", out)], [dataset], checks)
        )
    )
    checker.start()
    checker.join(0.5)
    assert checker.is_alive()  # waiting for the preparation, not parsing
    go.set()
    preparer.join(30)
    checker.join(30)
    assert len(calls) == 1
    assert len(reports) == 1


def test_whether_a_record_may_echo_is_what_asking_each_cell_gives() -> None:
    """:func:`_may_echo`, which counts a record's values and looks for covered identifiers
    by a few calls at once, says what asking of each cell in turn says."""
    import random

    from atoll.disclosure.echo import Columns
    from atoll.disclosure.inputs import Profile, _covered, _is_null, _may_echo

    def asked(record: list[str], hits: set[str], prof: Profile, watch: bool) -> bool:
        if len(hits) >= len({cell for cell in record if not _is_null(cell)}):
            return True
        if not prof.header:
            return False
        columns = prof.columns
        if watch and any(
            c < len(record) and _covered(record[c], hits) for c in columns.identifiers
        ):
            return True
        return bool(columns.quasi) and all(
            c < len(record) and _covered(record[c], hits) for c in columns.quasi
        )

    cells = [
        "P100", "p100", "Ada Abbott", "ada", "abbott", "", " NA ", "na", "null", "42", "42.0",
        "north", "a\xa0b", "x,y", "İx", "é", "a@b.org", "  ", "n/a", "x_y",
    ]  # fmt: skip
    # (no token holds an underscore: it parts words, as a space does)
    tokens = ["p100", "ada", "abbott", "42", "north", "a", "b", "x", "y", "a@b.org", "é"]
    # and a name's words run together, as an output may write them
    tokens += ["adaabbott", "ada-abbott", "ada.abbott"]
    rng = random.Random(3)
    for _ in range(3000):
        record = [rng.choice(cells) for _ in range(rng.randint(0, 6))]
        hits = set(rng.sample(tokens, rng.randint(0, 6)))
        width = rng.randint(0, 6)
        ids = frozenset(rng.sample(range(8), rng.randint(0, 3)))
        quasi = frozenset(rng.sample(range(8), rng.randint(0, 2)))
        prof = Profile(",", [f"c{i}" for i in range(width)], set(), Columns(ids, quasi), 0)
        watch = rng.random() < 0.8
        assert _may_echo(record, hits, prof, watch) == asked(record, hits, prof, watch), (
            record,
            hits,
            ids,
            quasi,
        )


def test_an_address_stands_for_its_person_by_its_own_part_only_where_it_is_no_word() -> None:
    from atoll.disclosure.inputs import mailbox

    assert mailbox("ada.abbott1@example.org") == "ada.abbott1"
    assert mailbox("hiro_haddad@example.org") == "hiro_haddad"
    assert mailbox("chiarabaptiste@example.org") == "chiarabaptiste"
    # a role's address, a short one, and what is no address
    for token in ["sales@example.org", "admin@example.org", "ab1@example.org", "a@b@c", "x@"]:
        assert mailbox(token) is None, token
