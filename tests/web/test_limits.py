"""The JSON check that runs before any parser, and the recursion limit a dependency raises."""

from __future__ import annotations

import json
import sys

from atoll.web.limits import EVM_RECURSION_LIMIT, cap_recursion, json_problem


def test_depth_is_measured_without_parsing() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert json_problem(deep, 64, 10**6) == "the JSON body is nested deeper than 64 levels"
    assert json_problem(b"[" * 64 + b"]" * 64, 64, 10**6) is None
    assert json_problem(b"[" * 65 + b"]" * 65, 64, 10**6) is not None
    deep_objects = b'{"a":' * 65 + b"1" + b"}" * 65
    assert "nested deeper" in (json_problem(deep_objects, 64, 10**6) or "")


def test_brackets_in_strings_do_not_count() -> None:
    body = json.dumps({"code": "[" * 5000 + '\\"{{{' + "}" * 10, "x": ['"[', "\\"]}).encode()
    assert json_problem(body, 4, 10**6) is None
    # an unterminated string hides nothing from json.loads either: it fails on it
    assert json_problem(b'["abc\\"' + b"[" * 1000, 4, 10**6) is None


def test_values_nul_and_encoding() -> None:
    many = json.dumps(list(range(1001))).encode()
    assert json_problem(many, 64, 1000) == "the JSON body holds more than 1000 values"
    assert json_problem(json.dumps({"a": "x" * 10_000}).encode(), 64, 1000) is None
    assert json_problem(b'{"a": 1}\x00', 64, 1000) == "the request body holds a NUL byte"
    assert json_problem(b'{"a": "\xff"}', 64, 1000) == "the request body is not UTF-8 text"
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        assert "NaN or Infinity" in (json_problem(b'{"a": %s}' % constant, 64, 1000) or "")
    assert json_problem(b'{"a": "NaN", "b": "Infinity"}', 64, 1000) is None


def test_recursion_limit_is_brought_back() -> None:
    import py_ecc  # noqa: F401  (its import raises the limit to 100,000)

    sys.setrecursionlimit(100_000)
    cap_recursion()
    assert sys.getrecursionlimit() == EVM_RECURSION_LIMIT
