"""Stretches of a text worth a closer look, found in C: the text is first translated to a mark
per byte (what may belong to a run, and a space for what ends one), then searched with
``bytes.find``; Python runs once per stretch, not once per character."""

from __future__ import annotations


def marked_runs(marks: bytes, needle: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each stretch of ``marks`` that begins with ``needle`` and runs to
    the next space (or the end)."""
    runs = []
    at = marks.find(needle)
    while at >= 0:
        end = marks.find(b" ", at)
        end = len(marks) if end < 0 else end
        runs.append((at, end))
        at = marks.find(needle, end)
    return runs
