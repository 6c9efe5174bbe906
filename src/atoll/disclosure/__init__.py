"""Disclosure checks: every output and log a job writes is checked before anyone but the
publisher may read it, and what the checks cannot clear is held for a reviewer.

:func:`check_files` is the entry point. The checks, each a small function in its own module,
report why they hold a file (:class:`~atoll.disclosure.report.Finding`): its type by content
and its size (:mod:`.filetypes`), records of the inputs echoed in rows, lines or file names
(:mod:`.echo`, :mod:`.inputs`, :mod:`.matcher`), also when disguised: spelled a character
at a time (:mod:`.spaced`), written as byte values or behind invisible characters
(:mod:`.bytelists`), or carried in a PNG's text chunks and pixels (:mod:`.pngdata`); small
cells, small groups and dominance in tables (:mod:`.tables`), encoded payloads, whole or
wrapped into short pieces (:mod:`.encoded`), and excess precision (:mod:`.precision`).
Whatever the checks cannot read is held.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from atoll.disclosure import matcher
from atoll.disclosure.background import Background
from atoll.disclosure.bytelists import (
    byte_lists,
    find_invisible,
    list_findings,
    spells_text,
    without_marks,
)
from atoll.disclosure.candidate import Candidate
from atoll.disclosure.columns import column_texts
from atoll.disclosure.echo import Echo, OutputIndex, backwards
from atoll.disclosure.encoded import compressed, find_encoded
from atoll.disclosure.filetypes import declared_type, png_findings, sniff
from atoll.disclosure.glued import Glued, GluedHit
from atoll.disclosure.inputs import (
    GroupSpec,
    Loaded,
    Profile,
    group_spec,
    keepable,
    load,
    preparing,
    profile,
    scan,
)
from atoll.disclosure.matcher import LineSearch, padded
from atoll.disclosure.pngdata import png_contents
from atoll.disclosure.precision import allowed_digits, digits_by_line, find_precision
from atoll.disclosure.report import CheckReport, FileReport, Finding
from atoll.disclosure.runs import text_marks, word_marks
from atoll.disclosure.shapes import STRETCH, line_shape, shaped
from atoll.disclosure.spaced import spelled_out
from atoll.disclosure.tables import (
    Table,
    classify,
    column_key,
    dominance,
    json_tables,
    markdown_tables,
    parse_delimited,
    printed_tables,
    small_cells,
    small_groups,
    small_in_data,
)
from atoll.disclosure.tokens import joined_words, name_tokens, pieces_joined
from atoll.models.output_policy import OutputChecks

__all__ = [
    "Candidate",
    "CheckReport",
    "FileReport",
    "Finding",
    "check_files",
    "prepare",
    "unchecked",
]

_CHUNK = 1024 * 1024
#: a file within the cap at least this large is hashed on a thread of its own
_HASH_APART = 256 * 1024
_TAG = re.compile(r"<[^>]*>")
_REGRESSION = re.compile(r"(No\. Observations|Df Residuals):\s+(\d+)")
#: what the pattern above starts with: a substring search first spares a regular expression
#: scan of a text that has no regression summary
_REGRESSION_LABELS = ("No. Observations", "Df Residuals")
_REGRESSION_KEYS = {"nobs", "n_obs", "df_resid", "df_residuals", "dof"}
#: the types whose rows are the text's lines as written (not parsed, nor with tags taken out)
_INDEXED_BY_LINE = frozenset({"txt", "md"})
#: bytes of a PNG's pixels read at a time, to tell whether they spell text
_PIXEL_WINDOW = 4096


@dataclass
class _File:
    """One candidate as the checks go: what it is and what was found so far."""

    candidate: Candidate
    size: int
    sha256: str
    findings: list[Finding] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    digits: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: the lengths of its head's lines, for a text (:func:`~.shapes.line_shape`): of its
    #: text as written, and of the texts it holds (a JSON's strings, an SVG's text unescaped)
    shapes: list[bytes] = field(default_factory=list)
    #: identifiers found joined to other text (:mod:`.glued`): input, line, value
    glued: list[tuple[int, int, str]] = field(default_factory=list)


def _read_capped(path: Path, cap: int) -> tuple[int, Background[str], bytes | None]:
    """Size, sha256 and, when the file is no larger than ``cap``, its bytes. The sha256 of
    a large file within the cap is made on a thread of its own, while the checks read its
    bytes."""
    with path.open("rb") as f:
        # a file within the cap is read by one call, into the bytes the checks read, not
        # gathered chunk by chunk and copied; a read short of what was asked is the end
        want = min(cap, os.fstat(f.fileno()).st_size) + 1
        head = f.read(want)
        if len(head) < want:
            return len(head), Background(_sha256, head, now=len(head) < _HASH_APART), head
        # larger than the cap, or grown since: read on
        digest = hashlib.sha256(head)
        kept = bytearray(head)
        size = len(head)
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size <= cap:
                kept += chunk
    return size, Background(digest.hexdigest, now=True), bytes(kept) if size <= cap else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lines(index: OutputIndex, pos: int, text: str) -> None:
    index.add_lines(pos, text)


def _png_contents(pos: int, data: bytes, index: OutputIndex) -> list[Finding]:
    """The texts and pixels of a PNG, checked as a text's lines are; what they hold that a
    text may not is held."""
    contents = png_contents(data)
    findings: list[Finding] = []
    for text in contents.texts:
        # read as a text file is: its payloads, and its records however disguised
        findings += find_encoded(text)
        findings += _disguised(pos, text, text.encode("utf-8"), None, index, "the png's text: ")
        index.add_lines(pos, text, "the png's text, line")
    pixels = contents.pixels or b""
    # a payload may fill a few rows of a large image: the pixels are read a window at a time
    spelled = [
        window
        for at in range(0, len(pixels), _PIXEL_WINDOW)
        if spells_text(window := pixels[at : at + _PIXEL_WINDOW])
    ]
    if spelled:
        findings.append(Finding(check="encoded", detail="pixels whose bytes spell text"))
        joined = b"".join(spelled).decode("utf-8", "replace")
        index.add_lines(pos, joined, "the png's pixels read as text, line")
    fmt = compressed(pixels)
    if fmt is not None:
        findings.append(Finding(check="encoded", detail=f"pixels holding {fmt} data"))
    if contents.too_large:
        findings.append(
            Finding(check="unparsed", detail="the png's pixels or text are too large to check")
        )
    return findings


def _json_rows(index: OutputIndex, pos: int, data: Any) -> None:
    """Each object's (and each list's) scalar values as one row."""
    count = 0

    def walk(node: Any) -> None:
        nonlocal count
        children = list(node.values()) if isinstance(node, dict) else node
        scalars = [v for v in children if not isinstance(v, dict | list)]
        if scalars:
            count += 1
            text = "\x1f".join(map(str, scalars))
            if isinstance(node, dict):
                text += "\x1f" + "\x1f".join(map(str, node))
            index.add_text(pos, f"object {count}", text)
        for child in children:
            if isinstance(child, dict | list):
                walk(child)

    if isinstance(data, dict | list):
        walk(data)
    else:
        index.add_text(pos, "object 1", str(data))


#: the most of a JSON's strings of many lines whose lines are measured
_MULTILINE_STRINGS = 16


def _multiline_strings(data: Any) -> list[str]:
    """The strings (values and keys) of a parsed JSON that hold lines enough to be records
    rewritten (:mod:`.shapes`), up to :data:`_MULTILINE_STRINGS` of them."""
    found: list[str] = []
    stack = [data]
    while stack and len(found) < _MULTILINE_STRINGS:
        node = stack.pop()
        if isinstance(node, str):
            if node.count("\n") >= STRETCH:
                found.append(node)
        elif isinstance(node, dict):
            stack += node.keys()
            stack += node.values()
        elif isinstance(node, list):
            stack += node
    return found


def _regressions(text: str, threshold: int, words: set[str] | None = None) -> list[Finding]:
    """Regression summaries over fewer observations (or residual degrees of freedom) than
    the threshold. ``words``: where known, the words of
    :data:`~atoll.disclosure.tables.REGRESSION_WORDS` the text holds (every label ends in
    one): none, and the text is not searched again."""
    if words is not None and not words:
        return []
    if not any(label in text for label in _REGRESSION_LABELS):
        return []
    small = [
        f"line {text.count(chr(10), 0, m.start()) + 1}"
        for m in _REGRESSION.finditer(text)
        if int(m.group(2)) < threshold
    ]
    return [_small_model(small, threshold)] if small else []


def _json_regressions(data: Any, threshold: int) -> list[Finding]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if str(k).lower() in _REGRESSION_KEYS and isinstance(v, int | float):
                    if v < threshold:
                        found.append(f"object key {len(found) + 1}")
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return [_small_model([f"{len(found)} values"], threshold)] if found else []


def _small_model(places: list[str], threshold: int) -> Finding:
    return Finding(
        check="small_group",
        detail=f"a model fitted on fewer than {threshold} observations or residual degrees "
        f"of freedom: {', '.join(places[:12])}",
    )


def _read_output(
    pos: int, candidate: Candidate, checks: OutputChecks, index: OutputIndex, allowed: int
) -> _File:
    """Phase one for a file: read it, check what needs no inputs, and index its rows."""
    size, sha256, data = _read_capped(candidate.path, checks.maxBytes)
    file = _File(candidate, size, "")
    try:
        return _check_read(pos, candidate, checks, index, allowed, file, data)
    finally:
        file.sha256 = sha256.result()


def _check_read(
    pos: int,
    candidate: Candidate,
    checks: OutputChecks,
    index: OutputIndex,
    allowed: int,
    file: _File,
    data: bytes | None,
) -> _File:
    """Phase one for a file, once read: what needs no inputs, and its rows indexed."""
    name = candidate.name if candidate.kind == "output" else ""
    declared = declared_type(name)
    size = file.size
    if candidate.kind == "output":
        words = name_tokens(candidate.name)
        if index.universe is not None:
            # and the inputs' values a name writes together with nothing between them
            words += joined_words(candidate.name, index.universe)
            words += pieces_joined(candidate.name, index.universe)
            if index.glued is not None:
                # and those it writes joined to other text or inside a longer word
                hits = index.glued.find(padded(candidate.name.encode("utf-8")))
                words += [value for _, _, value in hits]
            words = [w for w in words if w in index.universe]
            if index.normals is not None:
                # a row's tokens are normal forms: a name's word written backwards, or
                # otherwise spelled, is its normal form's
                words = [index.normals.get(w, w) for w in words]
        else:
            words += backwards(words)
        index.add(pos, "name", words, name=True)
    if data is None:
        file.findings.append(
            Finding(check="size", detail=f"{size} bytes, over the limit of {checks.maxBytes}")
        )
        return file
    # a text is told from binary, and its runs found, in one pass over it
    marks = text_marks(data) if declared not in (None, "png") else None
    kind, found = sniff(name, data, marks)
    file.findings += found
    if kind is None:
        return file
    if candidate.kind == "output" and kind not in checks.allowedTypes:
        file.findings.append(Finding(check="type", detail=f"type {kind} is not allowed"))
        return file
    if kind == "png":
        file.findings += png_findings(data)
        file.findings += _png_contents(pos, data, index)
        return file
    # a plain text's lines are indexed as written: their search for the inputs' tokens
    # runs on a thread of its own while the checks below read the text, and is joined when
    # its rows are indexed
    search = index.search_lines(data) if declared in _INDEXED_BY_LINE else None
    text = data.decode("utf-8")
    file.findings += find_encoded(text, marks)
    _check_text(pos, kind, text, data, marks, checks, index, allowed, file, search)
    # asked for last: the line search that made them has ended by now
    file.glued += _glued(data, search, index)
    return file


def _glued(
    data: bytes, search: LineSearch[list[GluedHit]] | None, index: OutputIndex
) -> list[tuple[int, int, str]]:
    """The inputs' identifiers a text writes joined to other text (:mod:`.glued`): found
    by its line search, or searched for here where it had none."""
    if search is not None:
        hits = search.also()
    elif index.glued is not None:
        hits = index.glued.find(padded(data))
    else:
        return []
    # a hit's place in the padded text is one on from its place in the text
    return [(number, data.count(b"\n", 0, at - 1) + 1, value) for number, at, value in hits]


def _glued_on(index: OutputIndex, text: str, line: int) -> list[tuple[int, int, str]]:
    """The inputs' identifiers an ASCII ``text`` read out of a file (what is spelled a
    character at a time, what a column spells) writes joined to other text, each said to
    be on ``line`` of the file."""
    if index.glued is None or not text.isascii():
        return []
    hits = index.glued.find(padded(text.encode("ascii")))
    return [(number, line, value) for number, _, value in hits]


def _disguised(
    pos: int,
    text: str,
    data: bytes,
    marks: bytes | None,
    index: OutputIndex,
    where: str,
    glued: list[tuple[int, int, str]] | None = None,
) -> list[Finding]:
    """What a text (``data``, its bytes, with their ``marks`` if made) holds disguised:
    invisible characters are held; the text in plain letters (no combining marks, no
    lookalikes of other scripts), what byte values written one at a time spell and what is
    spelled a character at a time are indexed as its lines are, to be compared with the
    inputs. ``where``: the text's place in its file, for the places named (empty for a whole
    file); ``glued``, if given, gets the identifiers that what is spelled a character at a
    time writes joined to other text (records spelled one after another run together)."""
    findings = find_invisible(text)
    bare = without_marks(text)
    if bare is not None:
        index.add_lines(pos, bare, f"{where}the text in plain letters, line")
    lists = byte_lists(data)
    findings += list_findings(lists)
    for listed in lists:
        # what the values spell is compared with the inputs as any line is
        label = f"{where}the byte values at line {listed.line}, line"
        index.add_lines(pos, listed.data.decode("utf-8", "replace"), label)
    for line, spelled in spelled_out(data, marks):
        if spelled is None:
            detail = f"{where}text spelled a character at a time too long to read at line {line}"
            findings.append(Finding(check="unparsed", detail=detail))
        else:
            index.add_text(pos, f"{where}line {line}, spelled out", spelled)
            if glued is not None:
                glued += _glued_on(index, spelled, line)
    return findings


def _check_text(
    pos: int,
    kind: str,
    text: str,
    data: bytes,
    marks: bytes | None,
    checks: OutputChecks,
    index: OutputIndex,
    allowed: int,
    file: _File,
    search: LineSearch[list[GluedHit]] | None,
) -> _File:
    """Phase one for a text of an allowed type: what needs no inputs, and its rows
    indexed."""
    file.findings += _disguised(pos, text, data, marks, index, "", file.glued)
    file.shapes.append(line_shape(text))
    if kind == "svg":
        file.shapes.append(line_shape(html.unescape(text)))
        # its text between tags, as it is drawn, and the whole of it: attribute values and
        # comments are not drawn but travel with the file; character references read
        _lines(index, pos, html.unescape(_TAG.sub(" ", text)))
        index.add_lines(pos, html.unescape(text), "the svg's source, line")
        return file
    # an ASCII text whose lines are read for tables: its words and figures marked once, for
    # the tables' names and the figures' precision
    lettered = word_marks(data) if kind in ("txt", "md") and text.isascii() else None
    file.digits = digits_by_line(text, allowed, lettered)
    if kind in ("csv", "tsv"):
        table = parse_delimited(text, "," if kind == "csv" else "\t")
        if table is not None:
            over = len(table.rows) > checks.maxCsvRows
            if over:
                file.findings.append(
                    Finding(
                        check="rows",
                        detail=f"{len(table.rows)} rows, over the limit of {checks.maxCsvRows}",
                    )
                )
            # a table over the limit is held whatever else it holds: its first rows are still
            # compared with the inputs, so that a reviewer reads what it is, but no more time
            # is spent on it
            limit = checks.maxCsvRows
            if table.lines is not None:
                # each row as the line it was read from: the delimiter splits as a
                # separator does, so its tokens are its cells'
                texts = [*table.lines[1 : limit + 1], table.lines[0]]
            else:
                texts = [*map("\x1f".join, table.rows[:limit]), "\x1f".join(table.header)]
            index.add_texts(pos, [*table.places[:limit], "row 1"], texts)
            if not over:
                file.tables.append(table)
        else:
            _lines(index, pos, text)
    elif kind == "json":
        data_ = json.loads(text)
        file.shapes += map(line_shape, _multiline_strings(data_))
        _json_rows(index, pos, data_)
        file.tables += json_tables(data_)
        file.findings += _json_regressions(data_, checks.threshold)
    else:
        labels: set[str] = set()
        file.tables += markdown_tables(text) + printed_tables(text, labels, lettered)
        file.findings += _regressions(text, checks.threshold, labels if text.isascii() else None)
        index.add_lines(pos, text, search=search)
        if kind == "md" and "&" in text:
            # markdown shows character references as the characters they name
            index.add_lines(pos, html.unescape(text), "the markdown as shown, line")
    _down_columns(pos, file, index)
    return file


def _down_columns(pos: int, file: _File, index: OutputIndex) -> None:
    """What the file's tables spell down their columns (:mod:`.columns`): indexed as lines
    are, its identifiers run together looked for, and byte values that are compressed data
    held."""
    for table in file.tables:
        for found in column_texts(table):
            place = f"column {found.column} from {table.places[found.row]}"
            if found.notation == "decimal":
                # a long grouped table's counts between 32 and 126 read as text too: what
                # a column spells is compared with the inputs, and held only where it is
                # compressed data
                fmt = compressed(found.data)
                if fmt is not None:
                    detail = f"decimal byte values holding {fmt} data down {place}"
                    file.findings.append(Finding(check="encoded", detail=detail))
                elif not spells_text(found.data):
                    continue
            text = found.data.decode("utf-8", "replace")
            index.add_lines(pos, text, f"what {place} spells, line")
            # the row the run starts on, as a line of the file (its header the first)
            file.glued += _glued_on(index, text, found.row + 2)


class _Inputs(NamedTuple):
    """What the output index is told of the inputs, when they are all small enough to keep
    parsed: every token they hold, each one's normal form, per normal form the inputs' other
    spellings of it, and the tokens not normal as written."""

    universe: frozenset[str]
    normals: dict[str, str]
    respelled: dict[str, list[str]]
    abnormal: frozenset[str]


def _universe(inputs: list[Path], profiles: list[Profile]) -> _Inputs | None:
    """The inputs' tokens, as :class:`_Inputs`; None when one is too large to keep parsed."""
    if len(profiles) != len(inputs):
        return None
    each = []
    for path, prof in zip(inputs, profiles, strict=True):
        try:
            loaded = load(path, prof)
        except (OSError, ValueError, csv.Error):
            return None
        if loaded is None:
            return None
        each.append(loaded)
    if len(each) == 1:
        one = each[0]
        return _Inputs(one.universe(), one.normals(), one.respellings(), one.abnormal())
    normals: dict[str, str] = {}
    respelled: dict[str, list[str]] = {}
    for loaded in each:
        normals.update(loaded.normals())
        for n, words in loaded.respellings().items():
            respelled.setdefault(n, []).extend(words)
    universe = frozenset().union(*(loaded.universe() for loaded in each))
    abnormal = frozenset().union(*(loaded.abnormal() for loaded in each))
    return _Inputs(universe, normals, respelled, abnormal)


def _unreadable(candidate: Candidate, why: str) -> _File:
    try:
        size, digest, _ = _read_capped(candidate.path, 0)
        sha256 = digest.result()
    except OSError:
        size, sha256 = 0, ""
    return _File(candidate, size, sha256, [Finding(check="unparsed", detail=why)])


def _echo_findings(file: _File, pos: int, echoes: list[Echo], index: OutputIndex) -> None:
    groups: dict[tuple[int, str, bool], list[str]] = {}
    for echo in echoes:
        _, place, is_name = index.rows[echo.row]
        groups.setdefault((echo.input, echo.how, is_name), []).append(place)
    for (number, how, is_name), places in sorted(groups.items()):
        if is_name:
            detail = f"the file's name reproduces a record of input {number + 1} {how}"
            file.findings.append(Finding(check="name", detail=detail))
            continue
        more = _more(len(places))
        file.findings.append(
            Finding(
                check="echo",
                detail=f"{places[0]}{more} reproduces a record of input {number + 1} {how}",
            )
        )
    if pos in index.overflow:
        file.findings.append(
            Finding(check="unparsed", detail="too many rows to compare with the inputs")
        )


def check_files(
    candidates: Sequence[Candidate], inputs: Sequence[Path], checks: OutputChecks
) -> CheckReport:
    """Check every file a job wrote against the inputs it read."""
    inputs = list(inputs)
    index = OutputIndex()
    try:
        profiles: list[Profile] = [profile(path, checks) for path in inputs]
    except (OSError, ValueError, csv.Error):
        profiles = []
    allowed = allowed_digits(max((p.digits for p in profiles), default=0))
    known = _universe(inputs, profiles)
    if known is not None:
        index.universe, index.normals, index.respelled, index.abnormal = known
    index.glued = _finders(inputs, profiles)
    files: list[_File] = []
    for pos, candidate in enumerate(candidates):
        try:
            files.append(_read_output(pos, candidate, checks, index, allowed))
        except Exception:
            # whatever stops a check holds the file: failing closed, never releasing it
            files.append(_unreadable(candidate, "the checks could not read the file"))
    try:
        if len(profiles) != len(inputs):
            raise ValueError("an input could not be profiled")
        specs, found = _group_specs(files, profiles)
        index.summaries = _summary_rows(files)
        result = scan(inputs, profiles, index, specs, checks)
    except Exception:
        # no comparison with the inputs, no release: every file is held
        for file in files:
            file.findings.append(
                Finding(check="unparsed", detail="the inputs could not be read to compare")
            )
        return _report(files)
    by_file: dict[int, list[Echo]] = {}
    for echo in result.echoes:
        by_file.setdefault(index.rows[echo.row][0], []).append(echo)
    for pos, file in enumerate(files):
        if file.sha256 in result.sha256:
            number = result.sha256.index(file.sha256) + 1
            file.findings.append(Finding(check="echo", detail=f"a copy of input {number}"))
        _echo_findings(file, pos, by_file.get(pos, []), index)
        try:
            for table in file.tables:
                spec = found.get(id(table))
                groups = spec.groups if spec is not None else None
                file.findings += small_cells(table, checks.threshold)
                file.findings += small_in_data(table, checks.threshold, groups)
                file.findings += small_groups(table, checks.threshold, groups)
                file.findings += dominance(table, checks.dominanceN, checks.dominanceK, groups)
        except Exception:
            file.findings.append(Finding(check="unparsed", detail="a table could not be read"))
        file.findings += find_precision(file.digits, allowed)
    _own_values(files, index, result.own, checks.threshold)
    try:
        _joined_identifiers(files, inputs, profiles, checks.threshold)
        _rewritten(files, inputs, profiles)
    except (OSError, ValueError, csv.Error):
        for file in files:
            if not file.findings:
                file.findings.append(
                    Finding(check="unparsed", detail="the inputs could not be read to compare")
                )
    return _report(files)


def _summary_rows(files: list[_File]) -> set[tuple[int, str]]:
    """(file, place) of each row of the files' aggregate tables, as classified: those with
    a count, a statistic, or that cross-tabulate counts; and the header row of a CSV one
    (its names are no record's values either)."""
    found: set[tuple[int, str]] = set()
    for pos, file in enumerate(files):
        for table in file.tables:
            if table.counts is not None or table.stats or table.crosstab:
                found.update((pos, place) for place in table.places)
                if table.places[:1] == ["row 2"]:
                    found.add((pos, "row 1"))
    return found


def _finders(inputs: list[Path], profiles: list[Profile]) -> Glued | None:
    """The finders of the identifiers of the inputs kept parsed, joined to other text; None
    where no input is kept parsed (or one cannot be profiled)."""
    if len(profiles) != len(inputs):
        return None
    finders = []
    for number, (path, prof) in enumerate(zip(inputs, profiles, strict=True)):
        try:
            loaded = load(path, prof)
        except (OSError, ValueError, csv.Error):
            continue  # the scan says so, and holds every file
        if loaded is not None and prof.columns.identifiers:
            finders.append((number, loaded.glued(prof.columns.identifiers)))
    return Glued(finders) if finders else None


def _more(count: int) -> str:
    """What a place named in an echo is followed by, as :func:`_echo_findings` writes it."""
    return f" (and {count - 1} more)" if count > 1 else ""


def _joined_identifiers(
    files: list[_File], inputs: list[Path], profiles: list[Profile], threshold: int
) -> None:
    """Hold each file not held yet that writes an identifier of an input joined to other
    text (:mod:`.glued`), where the value is one of fewer than ``threshold`` records'."""
    kept: dict[int, Loaded | None] = {}
    for file in files:
        if file.findings or not file.glued:
            continue
        lines: dict[int, list[int]] = {}
        for number, line, value in file.glued:
            if number not in kept:
                kept[number] = load(inputs[number], profiles[number])
            loaded = kept[number]
            if loaded is not None and len(loaded.holding({value})) < threshold:
                lines.setdefault(number, []).append(line)
        for number, found in sorted(lines.items()):
            places = sorted(set(found))
            file.findings.append(
                Finding(
                    check="echo",
                    detail=f"line {places[0]}{_more(len(places))} holds an identifier of "
                    f"input {number + 1} joined to other text",
                )
            )


def _rewritten(files: list[_File], inputs: list[Path], profiles: list[Profile]) -> None:
    """Hold each text not held yet that has, line after line, the lengths of an input's
    records in a row: the records rewritten a character at a time (:mod:`.shapes`)."""
    open_ = [f for f in files if not f.findings and any(len(s) >= STRETCH for s in f.shapes)]
    for number, (path, prof) in enumerate(zip(inputs, profiles, strict=True)):
        if not open_:
            return
        loaded = load(path, prof)
        if loaded is None:
            continue  # streamed: its records are not kept to be measured
        shapes = loaded.shapes(prof.delimiter)
        for file in list(open_):
            for which, shape in enumerate(file.shapes):
                found = shaped(shape, shapes)
                if found is None:
                    continue
                where = "" if which == 0 else " of a text it holds"
                detail = (
                    f"lines {found[0]} to {found[1]}{where} have the lengths of records of "
                    f"input {number + 1} in a row (its records rewritten a character at a time)"
                )
                file.findings.append(Finding(check="echo", detail=detail))
                open_.remove(file)
                break


def _own_values(
    files: list[_File], index: OutputIndex, own: dict[int, frozenset[str]], threshold: int
) -> None:
    """Hold each file not held yet whose rows hold, between them, ``threshold`` or more
    values that are each one record's own (a column of record-level data, whatever else was
    left out). A file held already needs no more reasons, nor the rows read to find them."""
    open_ = {pos for pos, file in enumerate(files) if not file.findings}
    for number, values in sorted(own.items()):
        if not open_:
            return
        normals = {index.spelled[v] for v in values}
        held: dict[int, set[str]] = {}
        if len(files) == 1:
            # the one file holds them all, in its rows or its name
            held[0] = normals
        else:
            for (pos, _, _), tokens_ in zip(index.rows, index.sets, strict=True):
                if pos in open_ and not normals.isdisjoint(tokens_):
                    held.setdefault(pos, set()).update(normals.intersection(tokens_))
        for pos, found in sorted(held.items()):
            if pos in open_ and len(found) >= threshold:
                detail = (
                    f"{len(found)} values each of one record of input {number + 1} "
                    "(record-level data)"
                )
                files[pos].findings.append(Finding(check="echo", detail=detail))
                open_.discard(pos)


def unchecked(candidates: Sequence[Candidate], why: str) -> CheckReport:
    """A report that holds every file for ``why``: for checks that could not be made."""
    return _report([_unreadable(candidate, why) for candidate in candidates])


def prepare(inputs: Sequence[Path], checks: OutputChecks) -> int:
    """Parse and keep, for the checks of a job that reads them, those of ``inputs`` small
    enough to be kept and not kept yet, with what the checks look records up by; returns how
    many it parsed. Run while the job runs, so that its checks find them ready: a dataset's
    first job otherwise waits, once it has ended, for its dataset to be parsed (seconds for
    a large one). A larger input is streamed by each job's checks, so nothing is done for
    it here."""
    with preparing([path for path in inputs if keepable(path)]) as fresh:
        if fresh:
            # the checks of a job that wrote nothing: what they build of the inputs is kept
            # (its identifiers' automaton among it)
            check_files([], fresh, checks)
            # and what they build only once a job's text is measured: its records' lengths
            with contextlib.suppress(OSError, ValueError, csv.Error):
                for path in fresh:
                    prof = profile(path, checks)
                    loaded = load(path, prof)
                    if loaded is not None:
                        loaded.shapes(prof.delimiter)
    # and the automaton a long text is searched for their tokens by (where they are all
    # kept: their tokens are known then)
    inputs = list(inputs)
    if all(map(keepable, inputs)):
        with contextlib.suppress(OSError, ValueError, csv.Error):
            known = _universe(inputs, [profile(path, checks) for path in inputs])
            if known is not None:
                matcher.build(known.universe)
    return len(fresh)


def _group_specs(
    files: list[_File], profiles: list[Profile]
) -> tuple[list[list[GroupSpec]], dict[int, GroupSpec]]:
    """Classify every table's columns, and find, for each table with statistics, the input
    whose columns its groups can be counted in: per input, the specs to count; per table
    (by id), its spec."""
    numeric = {column_key(p.header[j]) for p in profiles for j in p.numeric}
    specs: list[list[GroupSpec]] = [[] for _ in profiles]
    found: dict[int, GroupSpec] = {}
    for file in files:
        for table in file.tables:
            classify(table, numeric)
            # a table of counts too: the counts it states are the job's to write, and a
            # group's true size is what tells a record's row from an aggregate's
            if not table.stats and table.counts is None:
                continue
            counts_only = not table.stats
            for number, prof in enumerate(profiles):
                spec = group_spec(table, prof)
                if spec is not None:
                    spec.counts_only = counts_only
                    specs[number].append(spec)
                    found[id(table)] = spec
                    break
    return specs, found


def _report(files: list[_File]) -> CheckReport:
    return CheckReport(
        files=[
            FileReport(
                index=f.candidate.index,
                kind=f.candidate.kind,
                size=f.size,
                sha256=f.sha256,
                verdict="hold" if f.findings else "pass",
                findings=f.findings,
            )
            for f in files
        ]
    )
