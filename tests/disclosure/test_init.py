"""check_files on what jobs write: leaks of the dataset are held, aggregates a reviewer would
release pass, and every hold says why without quoting what the job wrote."""

from __future__ import annotations

import base64
import collections
import csv
import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import pytest

from atoll.disclosure import Candidate, check_files, matcher
from atoll.disclosure.report import FileReport, Finding
from atoll.models.output_policy import OutputChecks
from tests.disclosure.conftest import HEADER, REGIONS, REGRESSION_SUMMARY, Check, png


def _checks(report: FileReport) -> set[str]:
    return {f.check for f in report.findings}


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _printed(rows: list[list[str]]) -> str:
    """Rows as a data frame prints them: an index, then the values spaced out."""
    lines = ["    " + "  ".join(HEADER)]
    lines += [f"{i:<4}" + "  ".join(row) for i, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


# -- leaks are held ------------------------------------------------------------------------


def test_a_copy_of_the_input_is_held(check: Check, dataset: Path) -> None:
    (file,) = check({"results.csv": dataset.read_bytes()}).files
    assert file.verdict == "hold"
    details = [f.detail for f in file.findings if f.check == "echo"]
    assert "a copy of input 1" in details
    assert any("row 2 (and 399 more) reproduces a record of input 1 in full" in d for d in details)


def test_selected_columns_of_the_input_are_held(check: Check, records: list[list[str]]) -> None:
    selected = [["name", "diagnosis"]] + [[r[1], r[8]] for r in records]
    (file,) = check({"cohort.csv": _csv(selected)}).files
    assert "echo" in _checks(file)


def test_rows_printed_to_the_log_are_held(check: Check, records: list[list[str]]) -> None:
    log = "loading data\n" + _printed(records[:5]) + "done\n"
    (file,) = check({}, log=log).files
    assert file.kind == "log"
    assert file.verdict == "hold"
    assert any(f.detail.startswith("line 3 (and 4 more)") for f in file.findings)


def test_one_record_printed_as_a_list_is_held(check: Check, records: list[list[str]]) -> None:
    (file,) = check({}, log=f"row: {records[7]!r}\n").files
    assert "echo" in _checks(file)


def test_base64_of_the_input_is_held(check: Check, dataset: Path) -> None:
    (file,) = check({"model.txt": base64.b64encode(dataset.read_bytes())}).files
    assert file.findings[0].check == "encoded"
    assert file.findings[0].detail.startswith("base64")


def test_hex_of_the_input_is_held(check: Check, dataset: Path) -> None:
    (file,) = check({"weights.txt": dataset.read_bytes().hex()}).files
    assert _checks(file) == {"encoded"}


def test_compressed_input_is_held_raw_or_encoded(check: Check, dataset: Path) -> None:
    packed = gzip.compress(dataset.read_bytes())
    raw, wrapped = check(
        {"a.csv": packed, "b.json": json.dumps(base64.b64encode(packed).decode())}
    ).files
    assert raw.findings[0].check == "type"
    assert "gz" in raw.findings[0].detail
    assert any("gzip" in f.detail for f in wrapped.findings if f.check == "encoded")


def _assert_echoes_a_record(file: FileReport, how: str) -> None:
    """The file is held, and one of its reasons is an echo that says ``how``."""
    assert file.verdict == "hold"
    assert any(f.check == "echo" and how in f.detail for f in file.findings), file.findings


def test_records_joined_by_underscores_are_held(check: Check, records: list[list[str]]) -> None:
    """An underscore parts words as a space does: an identifier and a name run together
    with underscores (``P10001_Ada_Abbott123``), in a log or an output, are still the
    record's."""
    joined = "\n".join("_".join([r[0], *r[1].split()]) for r in records[:20]) + "\n"
    out, log = check({"ids.txt": joined}, log=joined).files
    for file in (out, log):
        _assert_echoes_a_record(file, "reproduces a record of input 1")


def test_names_run_together_in_a_text_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    """A name of several words written as one (camel case, hyphens, dots) in a log or an
    output is still the person's: each identifier value of several words is also known run
    together. (Not where the input is streamed.)"""
    lines = {
        "camel": [r[1].replace(" ", "") for r in records[:20]],
        "hyphens": [r[1].replace(" ", "-") for r in records[:20]],
        "dots": [f"user {r[1].replace(' ', '.').lower()} logged in" for r in records[:20]],
    }
    outputs = {f"{name}.txt": "\n".join(text) + "\n" for name, text in lines.items()}
    files = check(outputs, log="\n".join(lines["camel"]) + "\n").files
    if request.node.callspec.params["check"] == "streamed":
        pytest.skip("a streamed input's values are not known run together")
    for file in files:
        _assert_echoes_a_record(file, "reproduces a record of input 1 in an identifier")


def test_identifiers_written_together_in_file_names_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    """A name written in camel case, with hyphens, or with nothing between its words, and
    an identifier run into a name, still name the person. (Words written together in lower
    case are split by the inputs' tokens: not where the input is streamed.)"""
    joined = [
        records[0][1].replace(" ", ""),
        records[1][1].replace(" ", "-"),
        records[2][1].replace(" ", "").lower(),
        records[3][0] + records[3][1].split()[1],
    ]
    files = check({f"{name}.txt": "1\n" for name in joined}).files
    held = [(f.verdict, [x.check for x in f.findings]) for f in files]
    if request.node.callspec.params["check"] == "streamed":
        del held[2]
    assert held == [("hold", ["name"])] * len(held)


def test_identifiers_written_in_pieces_in_file_names_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    """An identifier parted by hyphens, dots or spaces (``P-10004``, ``P.1.0.0.0.4``) is
    still the record's. (Not where the input is streamed: its values are not known.)"""
    pieces = [
        f"{records[4][0][0]}-{records[4][0][1:]}",
        ".".join(records[5][0]),
        " ".join(records[6][0]),
        f"run_{'-'.join(records[7][0])}_out",
    ]
    files = check({f"{name}.txt": "1\n" for name in pieces}).files
    if request.node.callspec.params["check"] == "streamed":
        pytest.skip("a streamed input's values are not known to be joined")
    assert [(f.verdict, [x.check for x in f.findings]) for f in files] == [
        ("hold", ["name"])
    ] * len(pieces)
    # a name of words that are no value, parted as these are, is no record's
    (plain,) = check({"age-group.counts-by.region.csv": "1\n"}).files
    assert plain.verdict == "pass"


def test_identifiers_inside_longer_words_of_file_names_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    names = [f"{records[8][0]}x.txt", f"run{records[9][0]}final.csv", f"{records[10][0]}v2.md"]
    files = check({name: "1\n" for name in names}).files
    if request.node.callspec.params["check"] == "streamed":
        pytest.skip("a streamed input's identifiers are known only as tokens")
    assert [(f.verdict, [x.check for x in f.findings]) for f in files] == [
        ("hold", ["name"])
    ] * len(names)


def test_identifiers_in_file_names_are_held(check: Check, records: list[list[str]]) -> None:
    outputs = {f"plots/{r[2]}.png": png() for r in records[:3]}
    outputs[f"{records[9][0]}_summary.csv"] = "region,count\nnorth,120\n"
    files = check(outputs).files
    assert all(f.verdict == "hold" for f in files)
    for file in files:
        assert [f.check for f in file.findings] == ["name"]
        # what a consumer may see names no part of the file's name
        assert "@" not in file.findings[0].detail
        assert records[9][0].lower() not in file.findings[0].detail.lower()


# -- small numbers are held, with the cells named -------------------------------------------


# -- the input disguised so that no token of it is a record's ------------------------------


def _lines_of(records: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in records) + "\n"


def test_records_written_backwards_are_held(check: Check, records: list[list[str]]) -> None:
    backwards = _lines_of(records[:20])[::-1]
    per_line = "\n".join(",".join(r)[::-1] for r in records[:20])
    (whole, lines) = check({"a.txt": backwards}, log=per_line).files
    assert "echo" in _checks(whole) and "echo" in _checks(lines)
    (named,) = check({f"{records[3][0][::-1]}.txt": "ok"}).files
    assert _checks(named) == {"name"}


def test_records_written_backwards_are_held_whatever_ends_their_lines(
    check: Check, records: list[list[str]]
) -> None:
    # lines not ended by newlines alone (csv.writer's ``\r\n``, a form feed) are read one
    # by one: each token written backwards is still known as the input's value
    for end in ["\r\n", "\r", "\x0c", "\u2028"]:
        text = end.join(",".join(r) for r in records[:20])[::-1]
        (file,) = check({"a.txt": text}).files
        assert "echo" in _checks(file), repr(end)


def test_the_part_of_each_address_before_its_at_is_held_as_the_address(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    mailboxes = "\n".join(r[2].split("@")[0] for r in records[:30]) + "\n"
    files = check({"users.txt": mailboxes}, log=mailboxes).files
    if request.node.callspec.params["check"] == "streamed":
        pytest.skip("a streamed input's addresses are known as written only")
    for file in files:
        _assert_echoes_a_record(file, "reproduces a record of input 1 in an identifier")


def test_identifiers_a_log_writes_after_a_key_and_a_colon_are_held(
    check: Check, records: list[list[str]]
) -> None:
    lines = [f"user:{r[0]} region:{r[5]}" for r in records[:15]]
    lines += [f"{r[7]}:{r[0]}:{r[6]}" for r in records[15:30]]
    (output, log) = check({"users.txt": "\n".join(lines)}, log="\n".join(lines)).files
    for file in (output, log):
        _assert_echoes_a_record(file, "reproduces a record of input 1 in an identifier")


def test_records_spelled_a_character_at_a_time_are_held(
    check: Check, records: list[list[str]]
) -> None:
    spaced = "\n".join(" ".join(",".join(r)) for r in records[:20])
    one_per_line = "\n".join(",".join(records[5]))
    (a, b) = check({"a.txt": spaced, "b.txt": one_per_line}).files
    assert "echo" in _checks(a) and "echo" in _checks(b)
    assert any("spelled out" in f.detail for f in b.findings)


def test_records_hidden_between_invisible_characters_are_held(
    check: Check, records: list[list[str]]
) -> None:
    hidden = "\n".join("\u200b".join(",".join(r)) for r in records[:20])
    # zero-width characters can also carry bits between an innocent text's letters
    bits = "mean income " + "".join("\u200c\u200d"[b % 2] for b in b"P10001") + " 48000"
    (a, b) = check({"a.txt": hidden}, log=bits).files
    assert "encoded" in _checks(a) and "encoded" in _checks(b)


def test_records_decorated_restyled_or_referenced_character_by_character_are_held(
    check: Check, records: list[list[str]]
) -> None:
    lines = [",".join(r) for r in records[:20]]
    marked = "\n".join("".join(c + "\u0332" for c in line) for line in lines)
    fullwidth = "\n".join(
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in line) for line in lines
    )
    referenced = "\n".join("".join(f"&#{ord(c)};" for c in line) for line in lines)
    files = check({"a.txt": marked, "b.txt": fullwidth, "c.txt": referenced}).files
    for file in files:
        assert "echo" in _checks(file), file.findings
    assert "encoded" in _checks(files[2])


def test_records_in_lookalike_letters_of_other_scripts_are_held(
    check: Check, records: list[list[str]]
) -> None:
    # Cyrillic Er for P, Cyrillic a and o for a and o: each value is another word as written
    look = str.maketrans({"P": "\u0420", "a": "\u0430", "o": "\u043e"})
    text = "\n".join(",".join(r).translate(look) for r in records[:30])
    (file,) = check({"people.txt": text}).files
    assert file.verdict == "hold"
    assert any(
        f.check == "echo" and "the text in plain letters" in f.detail for f in file.findings
    ), file.findings


def test_the_input_written_down_a_column_a_value_a_row_is_held(
    check: Check, dataset: Path, request: pytest.FixtureRequest
) -> None:
    data = dataset.read_bytes()[:2500]
    text = data.decode()
    outputs = {
        # a plot's points: an index and a byte value a row
        "points.csv": "x,y\n" + "".join(f"{i},{b}\n" for i, b in enumerate(data)),
        # a label beside each value: the rows are not lines of figures only
        "labelled.csv": "label,value\n" + "".join(f"p{i},{b}\n" for i, b in enumerate(data)),
        # a character a row
        "chars.csv": "i,c\n" + "".join(f"{i},{c}\n" for i, c in enumerate(text) if c not in ",\n"),
    }
    log = "".join(f"{i} {b}\n" for i, b in enumerate(data))
    files = check(outputs, log=log).files
    # what the values spell down their column is compared with the inputs: the records
    for file in (files[0], files[1], files[3]):
        assert file.verdict == "hold"
        assert "echo" in _checks(file), file.findings
    if request.node.callspec.params["check"] == "streamed":
        return  # a streamed input's identifiers are known only as tokens
    # the records a character a row run together: their identifiers are found inside
    assert any("joined to other text" in f.detail for f in files[2].findings), files[2]


def test_a_long_grouped_count_whose_counts_read_as_text_passes(check: Check) -> None:
    # seventy ages, each counted 40 to 120 times: read down the column, the counts are
    # printable bytes, letters and punctuation among them
    rows = "".join(f"{18 + i},{40 + (i * 37) % 81}\n" for i in range(70))
    files = check({"by_age.csv": "age,count\n" + rows}, log="age,count\n" + rows).files
    assert [f.verdict for f in files] == ["pass", "pass"], files


def test_columns_of_small_numbers_and_single_letters_are_not_held(check: Check) -> None:
    rows = "".join(
        f"{REGIONS[i % 4]},{'FM'[i % 2]},{20 + i % 7},{12 + (i * 5) % 40}\n" for i in range(80)
    )
    (file,) = check({"by_group.csv": "region,sex,age,count\n" + rows}).files
    assert file.verdict == "pass", file.findings


def test_the_input_as_byte_values_is_held_and_read_for_records(check: Check, dataset: Path) -> None:
    data = dataset.read_bytes()[:3000]
    files = check(
        {
            "hex.txt": " ".join(f"{b:02x}" for b in data),
            "escaped.txt": "".join(f"\\x{b:02x}" for b in data),
            "decimal.json": json.dumps(list(data)),
            "lines.txt": "\n".join(map(str, data)),
        }
    ).files
    for file in files:
        assert file.verdict == "hold"
        assert "encoded" in _checks(file)
        # what the values spell is compared with the inputs: the records are named
        assert "echo" in _checks(file)


def test_aggregates_with_lists_of_small_numbers_still_pass(check: Check) -> None:
    ages = {"age_histogram": list(range(18, 91)), "counts": [120 + i % 7 for i in range(40)]}
    table = "bin,count\n" + "".join(f"{i},{11 + i % 9}\n" for i in range(60))
    files = check({"hist.json": json.dumps(ages), "bins.csv": table}).files
    assert [f.verdict for f in files] == ["pass", "pass"], [f.findings for f in files]


def test_a_grouped_table_with_small_cells_is_held_naming_them(check: Check) -> None:
    table = "region,sex,count\nnorth,F,52\nnorth,M,48\nsouth,F,3\nsouth,M,7\neast,F,0\n"
    (file,) = check({"counts.csv": table}).files
    assert file.verdict == "hold"
    (finding,) = file.findings
    assert finding.check == "small_cells"
    assert finding.detail == "2 counts under 10: row 4 column 3, row 5 column 3"


def test_a_cross_tabulation_with_small_cells_is_held(check: Check) -> None:
    (file,) = check({"xtab.csv": "region,F,M\nnorth,52,48\nsouth,4,40\n"}).files
    assert file.findings[0].detail == "1 counts under 10: row 3 column 2"


def test_a_mean_over_two_people_is_held_naming_the_row(check: Check) -> None:
    table = "diagnosis,n,mean_income\nasthma,130,51234.12\nrare,2,60000.50\n"
    (file,) = check({"means.csv": table}).files
    assert file.verdict == "hold"
    groups = [f for f in file.findings if f.check == "small_group"]
    assert groups[0].detail == "statistics in columns 3 over groups under 10: row 3 (a group of 2)"


def test_a_statistic_over_one_person_is_held_by_the_inputs_counts(
    check: Check, records: list[list[str]]
) -> None:
    # no count column: the group sizes are counted in the input (one person per name)
    table = _csv([["name", "max_income"], [records[0][1], "50000"]])
    (file,) = check({"max.csv": table}).files
    assert "row 2 (a group of 1)" in next(
        f.detail for f in file.findings if f.check == "small_group"
    )


def test_a_sum_dominated_by_two_people_is_held(tmp_path: Path) -> None:
    rows = [["region", "income"]] + [["north", "100"]] * 20 + [["north", "90000"]] * 2
    data = tmp_path / "in.csv"
    data.write_text(_csv(rows))
    out = tmp_path / "out"
    out.write_text("region,sum_income\nnorth,182000\n")
    report = check_files([Candidate(0, "output", "t.csv", out)], [data], OutputChecks())
    (finding,) = report.files[0].findings
    assert finding.check == "dominance"
    assert finding.detail.endswith("row 2 column 2")


def test_records_the_job_spelled_otherwise_are_held(tmp_path: Path) -> None:
    """A job that reads a dataset as numbers writes its records back spelled otherwise: an
    identifier's leading zeros and a figure's trailing zero dropped (as a data frame does).
    The rows are still the records."""
    rows = [["member_no", "region", "age", "income"]]
    rows += [[f"{7300 + i:06d}", REGIONS[i % 4], str(20 + i), f"{51234 + i}.10"] for i in range(50)]
    data = tmp_path / "in.csv"
    data.write_text(_csv(rows))
    out = tmp_path / "out.csv"
    out.write_text(
        _csv([["m", "r", "a", "i"]] + [[str(int(r[0])), r[1], r[2], r[3][:-1]] for r in rows[1:]])
    )
    (file,) = check_files([Candidate(0, "output", "out.csv", out)], [data], OutputChecks()).files
    echoes = [f.detail for f in file.findings if f.check == "echo"]
    assert echoes == ["row 2 (and 49 more) reproduces a record of input 1 in full"]


def test_a_model_on_few_observations_is_held(check: Check) -> None:
    summary = REGRESSION_SUMMARY.replace("400", "  8").replace("397", "  5")
    (file,) = check({}, log=summary).files
    assert _checks(file) == {"small_group"}


def test_excess_precision_is_held_for_review(check: Check) -> None:
    (file,) = check({"mean.json": json.dumps({"mean_income": 51234.123456789012, "n": 400})}).files
    assert _checks(file) == {"precision"}


def test_what_cannot_be_parsed_is_held(check: Check) -> None:
    broken, quoted = check({"a.json": "{not json", "b.csv": 'a,b\n"open,1\n'}).files
    assert _checks(broken) == {"unparsed"}
    assert _checks(quoted) == {"unparsed"}


def test_an_unknown_type_or_a_forged_png_is_held(check: Check) -> None:
    pickle, fake = check({"model.pkl": b"\x80\x04K\x01.", "plot.png": "not an image"}).files
    assert _checks(pickle) == {"type"}
    assert fake.findings[0].detail == "named as png but its content is text"


def test_a_type_outside_the_allowlist_is_held(check: Check) -> None:
    (file,) = check({"notes.md": "# Notes\n"}, checks=OutputChecks(allowedTypes=["csv"])).files
    assert file.findings[0].detail == "type md is not allowed"


def test_a_csv_over_the_row_limit_is_held(check: Check) -> None:
    table = "bin,count\n" + "".join(f"{i},{100 + i}\n" for i in range(50))
    (file,) = check({"t.csv": table}, checks=OutputChecks(maxCsvRows=40)).files
    assert file.findings[0].detail == "50 rows, over the limit of 40"


def test_a_png_carrying_data_after_its_end_is_held(check: Check, dataset: Path) -> None:
    (file,) = check({"plot.png": png(trailing=dataset.read_bytes())}).files
    assert _checks(file) == {"encoded"}


def _image(width: int, height: int, pixels: bytes, *chunks: tuple[bytes, bytes]) -> bytes:
    """A grey PNG of these pixels (unfiltered scanlines) with these chunks before them."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    lines = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(chunk(kind, body) for kind, body in chunks)
        + chunk(b"IDAT", zlib.compress(lines))
        + chunk(b"IEND", b"")
    )


def test_records_in_a_png_s_text_chunks_are_held(check: Check, records: list[list[str]]) -> None:
    rows = "\n".join(",".join(r) for r in records[:40]).encode()
    grey = bytes([200]) * 4
    files = check(
        {
            "a.png": _image(2, 2, grey, (b"tEXt", b"Comment\x00" + rows)),
            "b.png": _image(2, 2, grey, (b"zTXt", b"Comment\x00\x00" + zlib.compress(rows))),
            "c.png": _image(
                2, 2, grey, (b"iTXt", b"Comment\x00\x01\x00en\x00\x00" + zlib.compress(rows))
            ),
        }
    ).files
    for file in files:
        assert "echo" in _checks(file)
        assert any(f.detail.startswith("the png's text, line") for f in file.findings)


def test_records_disguised_in_a_png_s_text_chunks_are_held(
    check: Check, records: list[list[str]]
) -> None:
    """A PNG's texts are read as a text file is: records spelled a character at a time,
    decorated with combining marks (an iTXt chunk is UTF-8) or written as byte values are
    found there too."""
    rows = "\n".join(",".join(r) for r in records[:12])
    grey = bytes([200]) * 4
    spelled = " ".join(rows).encode()
    marked = "".join(c + "\u0301" if c.isalpha() else c for c in rows).encode()
    listed = ", ".join(str(b) for b in rows.encode()[:1200]).encode()
    files = check(
        {
            "a.png": _image(2, 2, grey, (b"tEXt", b"Comment\x00" + spelled)),
            "b.png": _image(2, 2, grey, (b"iTXt", b"Comment\x00\x00\x00en\x00\x00" + marked)),
            "c.png": _image(2, 2, grey, (b"zTXt", b"Comment\x00\x00" + zlib.compress(listed))),
        }
    ).files
    places = [[f.detail for f in file.findings if f.check == "echo"] for file in files]
    named = [
        "the png's text: line 1, spelled out",
        "the png's text: the text in plain letters, line 1",
        "the png's text: the byte values at line 1",
    ]
    for found, place in zip(places, named, strict=True):
        assert any(p.startswith(place) and p.endswith("in full") for p in found), found
    assert all(file.verdict == "hold" for file in files)


def test_the_input_written_into_a_png_s_pixels_is_held(check: Check, dataset: Path) -> None:
    data = dataset.read_bytes()[:20_000]
    # the payload in the top rows of a larger, otherwise black, image
    width, height = 400, 400
    pixels = data + bytes(width * height - len(data))
    (file,) = check({"plot.png": _image(width, height, pixels)}).files
    assert "pixels whose bytes spell text" in [f.detail for f in file.findings]
    assert "echo" in _checks(file)


def test_a_plot_s_png_with_its_software_note_passes(check: Check) -> None:
    width, height = 300, 200
    pixels = bytearray(b"\xff" * (width * height))
    for x in range(width):
        pixels[(x * 7 % height) * width + x] = 40  # a line drawn across
    software = (b"tEXt", b"Software\x00matplotlib version 3.8.0, https://matplotlib.org/")
    (file,) = check({"plot.png": _image(width, height, bytes(pixels), software)}).files
    assert file.verdict == "pass", file.findings


def test_records_in_an_svg_s_attributes_comments_or_references_or_in_markdown_s_are_held(
    check: Check, records: list[list[str]]
) -> None:
    attributes = "".join(f'<rect id="{r[0]}" data-name="{r[1]}"/>' for r in records[:20])
    comment = "<!-- " + "\n".join(",".join(r) for r in records[:20]) + " -->"
    referenced = "".join(f"&#{ord(c)};" for c in ",".join(records[4]))
    files = check(
        {
            f"{name}.svg": f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>'
            for name, body in [
                ("attributes", attributes),
                ("comment", comment),
                ("referenced", f"<text>{referenced}</text>"),
            ]
        }
    ).files
    (markdown,) = check({"notes.md": f"# Notes\n\n{referenced}\n"}).files
    for file in [*files, markdown]:
        assert "echo" in _checks(file), file.findings


# -- aggregates pass -----------------------------------------------------------------------


def test_aggregates_a_reviewer_would_release_pass(check: Check, records: list[list[str]]) -> None:
    counts = {(r, s): 0 for r in REGIONS for s in "FM"}
    for row in records:
        counts[(row[5], row[4])] += 1
    assert min(counts.values()) >= 10
    count_table = _csv(
        [["region", "sex", "count"]] + [[r, s, str(n)] for (r, s), n in counts.items()]
    )
    means = _csv(
        [["region", "n", "mean_age", "mean_income"]]
        + [
            [
                region,
                str(len(group := [r for r in records if r[5] == region])),
                f"{sum(int(r[6]) for r in group) / len(group):.1f}",
                f"{sum(float(r[7]) for r in group) / len(group):.2f}",
            ]
            for region in REGIONS
        ]
    )
    ages = [int(r[6]) for r in records]
    histogram = _csv(
        [["bin_start", "bin_end", "count"]]
        + [
            [str(lo), str(hi), str(sum(lo <= a < hi for a in ages))]
            for lo, hi in [(18, 36), (36, 54), (54, 72), (72, 91)]
        ]
    )
    coefficients = json.dumps(
        {"coef": {"const": 50120.1234, "age": 45.1234}, "nobs": 400, "r2": 0.012}
    )
    report = check(
        {
            "counts.csv": count_table,
            "means_by_region.csv": means,
            "age_histogram.csv": histogram,
            "model.txt": REGRESSION_SUMMARY,
            "coefficients.json": coefficients,
            "plot.png": png(),
            "README.md": "# Summary\n\n| region | count |\n|---|---|\n| all | 400 |\n",
        },
        log="loaded 400 records\nfitting model\nwrote 7 files\n",
    )
    assert [(f.index, f.kind, f.verdict, f.findings) for f in report.files] == [
        (i, "output", "pass", []) for i in range(7)
    ] + [(0, "log", "pass", [])]


def test_means_by_group_without_a_count_column_pass_on_the_inputs_counts(check: Check) -> None:
    (file,) = check({"m.csv": "region,mean_income\nnorth,51234.12\nsouth,49876.50\n"}).files
    assert file.verdict == "pass"


def test_the_report_binds_every_file_by_hash(check: Check) -> None:
    report = check({"a.txt": "hello\n"}, log="")
    assert [f.sha256[:8] for f in report.files] == ["5891b5b5", "e3b0c442"]
    assert len(report.digest()) == 64


def test_a_file_that_cannot_be_read_is_held(tmp_path: Path) -> None:
    missing = Candidate(index=3, kind="output", name="a.csv", path=tmp_path / "gone")
    (file,) = check_files([missing], [], OutputChecks()).files
    assert (file.index, file.verdict, file.size) == (3, "hold", 0)
    assert file.findings[0].check == "unparsed"


def test_inputs_that_cannot_be_read_hold_everything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("region,count\nnorth,120\n")
    candidate = Candidate(index=0, kind="output", name="t.csv", path=out)
    (file,) = check_files([candidate], [tmp_path / "missing"], OutputChecks()).files
    assert file.findings == [
        Finding(check="unparsed", detail="the inputs could not be read to compare")
    ]


def test_records_as_json_or_as_text_in_a_plot_are_held(
    check: Check, records: list[list[str]]
) -> None:
    as_json = json.dumps([dict(zip(HEADER, r, strict=True)) for r in records[:3]], indent=2)
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><text x="1" y="2">'
        f"{records[3][1]} earns {records[3][7]}</text></svg>"
    )
    listing, plot = check({"records.json": as_json, "plot.svg": svg}).files
    assert "echo" in _checks(listing)
    assert _checks(plot) == {"echo"}


def test_a_plot_of_aggregates_passes(check: Check) -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><text x="1" y="2">north 120</text>'
        '<path d="M 0 0 L 10.123456789 20.987654321"/></svg>'
    )
    assert check({"plot.svg": svg}).files[0].verdict == "pass"


def test_a_count_printed_to_the_log_with_a_small_cell_is_held(check: Check) -> None:
    (file,) = check({}, log="region\nnorth    140\neast       4\nName: count, dtype: int64\n").files
    assert [f.detail for f in file.findings] == ["1 counts under 10: line 3 column 2"]


def test_a_count_printed_to_the_log_as_csv_with_a_small_cell_is_held(check: Check) -> None:
    small = "loaded 400 records, 9 columns\nregion,sex,count\nnorth,F,52\nnorth,M,3\n"
    large = "region,sex,count\nnorth,F,52\nnorth,M,48\n"
    (held,) = check({}, log=small).files
    assert [f.detail for f in held.findings] == ["1 counts under 10: line 4 column 3"]
    (text, log) = check({"by_group.txt": large}, log=large).files
    assert (text.verdict, log.verdict) == ("pass", "pass"), (text, log)


def test_a_file_is_read_whole_within_the_cap_and_only_hashed_over_it(tmp_path: Path) -> None:
    import hashlib

    from atoll.disclosure import _read_capped

    for size in (0, 1, 5, 6, 7, 3 << 20):
        path = tmp_path / f"f{size}"
        data = bytes(i % 251 for i in range(size))
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        for cap in (0, 5, 6, 7, 1 << 20, 4 << 20):
            kept = data if size <= cap else None
            got, hashed, read = _read_capped(path, cap)
            # a large file's hash is made on a thread of its own: the same, once joined
            hexdigest = hashed if isinstance(hashed, str) else hashed.result()
            assert (got, hexdigest, read) == (size, digest, kept), (size, cap)


def test_a_file_whose_hash_fails_on_its_thread_is_held(
    check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    import atoll.disclosure as disclosure

    def broken(data: bytes) -> str:
        raise MemoryError("no room to hash")

    monkeypatch.setattr(disclosure, "_HASH_APART", 0)
    monkeypatch.setattr(disclosure, "_sha256", broken)
    (file,) = check({"a.txt": "region,count\nnorth,120\n"}).files
    assert file.verdict == "hold"


def test_a_log_whose_search_for_the_inputs_fails_on_its_thread_is_held(
    check: Check,
    records: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    def broken(tokens: frozenset[str], size: int) -> None:
        raise RuntimeError("the automaton could not be built")

    monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    monkeypatch.setattr(matcher, "_automaton", broken)
    (file,) = check({}, log="loading data\n" + _printed(records[:5])).files
    assert file.verdict == "hold"
    if request.node.callspec.params["check"] == "streamed":
        # no search of the log by the inputs' tokens (none are kept): what it printed is
        # found from the dataset's side
        assert {f.check for f in file.findings} == {"echo"}
        return
    assert [f.detail for f in file.findings] == ["the checks could not read the file"]


# -- a column of record-level values, with nothing to join it on ----------------------------


@pytest.mark.parametrize("long_text", [False, True], ids=["split", "automaton"])
def test_a_column_of_each_record_s_own_values_is_held(
    tmp_path: Path,
    dataset: Path,
    records: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    long_text: bool,
) -> None:
    """Incomes written one per record, with no identifier beside them (alone, with the age,
    as a JSON list, in a log): each is one person's exact value, and together they are the
    dataset's column. Held, naming how many, whatever the job left out."""
    if long_text:
        monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    incomes = [r[7] for r in records[:60]]
    outputs = {
        "incomes.txt": "\n".join(incomes) + "\n",
        "age_income.csv": _csv([["age", "income"], *([r[6], r[7]] for r in records[:60])]),
        "incomes.json": json.dumps([float(v) for v in incomes]),
    }
    paths = []
    for i, (name, text) in enumerate(outputs.items()):
        path = tmp_path / f"out{i}"
        path.write_text(text)
        paths.append(Candidate(i, "output", name, path))
    log = tmp_path / "log"
    log.write_text("".join(f"person {n}: income {v}\n" for n, v in enumerate(incomes[:10])))
    paths.append(Candidate(0, "log", "log", log))
    report = check_files(paths, [dataset], OutputChecks())
    assert [f.verdict for f in report.files] == ["hold"] * 4
    details = [[(x.check, x.detail) for x in f.findings] for f in report.files]
    record_level = "values each of one record of input 1 (record-level data)"
    # the table is held for its rows already (a held file is given no more reasons)
    del details[1]
    assert details == [
        [("echo", f"60 {record_level}")],
        [("echo", f"60 {record_level}")],
        [("echo", f"10 {record_level}")],
    ]


def test_a_few_exact_values_and_summaries_of_them_pass(
    tmp_path: Path, dataset: Path, records: list[list[str]]
) -> None:
    """Fewer such values than the threshold (the extremes a summary prints), rounded
    values, and values that repeat across records are no column of record-level data."""
    incomes = sorted(float(r[7]) for r in records)
    outputs = {
        "nine.txt": "\n".join(r[7] for r in records[:9]) + "\n",
        "summary.txt": f"min {incomes[0]}\nmedian {incomes[200]}\nmax {incomes[-1]}\n"
        f"mean {sum(incomes) / len(incomes):.2f}\n",
        "rounded.txt": "\n".join(str(round(float(r[7]), -3)) for r in records) + "\n",
        "ages.txt": "\n".join(r[6] for r in records) + "\n",
    }
    paths = []
    for i, (name, text) in enumerate(outputs.items()):
        path = tmp_path / f"out{i}"
        path.write_text(text)
        paths.append(Candidate(i, "output", name, path))
    report = check_files(paths, [dataset], OutputChecks())
    assert [(f.verdict, f.findings) for f in report.files] == [("pass", [])] * 4


def test_a_file_s_report_is_the_same_checked_alone_or_beside_others(
    tmp_path: Path, dataset: Path, records: list[list[str]]
) -> None:
    """Each file is read on its own: checked alone, a file gets the report it gets beside
    the job's other files (the provider checks a job's log apart, from its exit on)."""
    files = {
        "copy.csv": dataset.read_text(),
        "rows.txt": _csv(records[:30]),
        "counts.csv": "region,count\nnorth,110\nsouth,120\neast,3\nwest,101\n",
        "means.json": json.dumps({"mean_age": 54.25, "n": 400}),
        "b64.txt": base64.b64encode(dataset.read_bytes()[:3000]).decode(),
        f"{records[0][0]}.txt": "1\n",
        "printed.md": _printed(records[:12]),
    }
    log = "\n".join(["loaded 400 rows", *(",".join(r) for r in records[40:45]), "done"]) + "\n"
    candidates = []
    for index, (name, text) in enumerate(files.items()):
        path = tmp_path / f"out{index}"
        path.write_text(text)
        candidates.append(Candidate(index, "output", name, path))
    (tmp_path / "log").write_text(log)
    candidates.append(Candidate(len(files), "log", "algorithm.log", tmp_path / "log"))
    together = check_files(candidates, [dataset], OutputChecks()).files
    alone = [check_files([c], [dataset], OutputChecks()).files[0] for c in candidates]
    assert together == alone
    assert {f.verdict for f in together} == {"pass", "hold"}


# -- records by their quasi-identifiers ----------------------------------------------------


def _quasi(record: list[str]) -> str:
    """A record's age, sex and region (the columns whose names say they narrow a person
    down) and its diagnosis."""
    return f"{record[6]} {record[4]} {record[5]} {record[8]}"


def test_records_listed_by_their_quasi_identifiers_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    """No identifier, but age, sex and region with another field, line after line: few
    records share those values, so each line is a record's. Counted where the input is kept
    parsed; a streamed one is not counted, and none is held for it."""
    listing = "\n".join(map(_quasi, records[:40])) + "\n"
    as_csv = "age,sex,region,diagnosis\n" + listing.replace(" ", ",")
    report = check({"people.txt": listing, "people.csv": as_csv}, log=listing)
    if request.node.callspec.params["check"] == "streamed":
        assert {f.verdict for f in report.files} == {"pass"}
        return
    for file in report.files:
        assert file.verdict == "hold"
        assert any("few records share" in f.detail for f in file.findings), file.findings


def test_a_quasi_identifier_echo_needs_few_records_sharing_the_values(
    check: Check, records: list[list[str]]
) -> None:
    """The same columns in an aggregate: each row's values are shared by many records (a
    count of them that equals someone's age is no age), so nothing is held."""
    groups = collections.Counter((r[5], r[4], r[8]) for r in records)
    table = "region,sex,diagnosis,count\n" + "".join(
        f"{region},{sex},{dx},{n}\n" for (region, sex, dx), n in sorted(groups.items())
    )
    assert min(groups.values()) >= 10
    (file,) = check({"counts.csv": table}).files
    assert file.verdict == "pass", file.findings
    # marked not to guess: the listing passes too
    listing = "\n".join(map(_quasi, records[:40])) + "\n"
    (file,) = check({"people.txt": listing}, checks=OutputChecks(guessIdentifiers=False)).files
    assert file.verdict == "pass", file.findings


def test_records_dressed_as_a_table_of_counts_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    """Each record's quasi-identifiers with a count made up for them: the inputs hold one
    or two records of each group, whatever the count says (where they are kept parsed)."""
    header = "age,sex,region,diagnosis,count\n"
    rows = "".join(",".join([*_quasi(r).split(), "12"]) + "\n" for r in records[:40])
    (file,) = check({"by_group.csv": header + rows}).files
    if request.node.callspec.params["check"] == "streamed":
        # a streamed input's groups are counted only for tables of statistics
        assert file.verdict == "pass"
        return
    assert file.verdict == "hold"
    assert any("one or two records" in f.detail for f in file.findings), file.findings


def test_counts_of_groups_the_inputs_do_not_show_are_taken_at_their_word(
    check: Check, records: list[list[str]]
) -> None:
    """Bands of ages are no group the inputs hold (their counts are trusted), nor is a
    table of a few groups held for counts over what the inputs hold of them."""
    bands = collections.Counter(f"{int(r[6]) // 10 * 10}s" for r in records)
    table = "age,count\n" + "".join(f"{band},{n}\n" for band, n in sorted(bands.items()) if n >= 10)
    regions = collections.Counter(r[5] for r in records)
    doubled = "region,count\n" + "".join(f"{k},{2 * n}\n" for k, n in sorted(regions.items()))
    # one column's values, each counted a dozen times: at most the values the data holds
    ages = "age,count\n" + "".join(f"{r[6]},12\n" for r in records[:40])
    for name, text in (("bands.csv", table), ("regions.csv", doubled), ("ages.csv", ages)):
        (file,) = check({name: text}).files
        assert file.verdict == "pass", (name, file.findings)
