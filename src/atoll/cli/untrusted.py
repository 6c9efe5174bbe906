"""Text from others shown as plain text in the terminal.

Names, tags and descriptions come from publishers, file names and logs from jobs, status texts
and error messages from a provider: any of them may hold Rich markup (``[link=…]``,
``[/oops]``) or bytes a terminal acts on (ESC and CSI sequences, OSC 8 links, ``\\r`` and
backspace that overwrite what was printed, bidi overrides that reorder a line). Everything
the CLI prints that it did not write itself goes through this module: markup is escaped, and
those characters are shown as their escapes (``\\x1b``, ``\\u202e``) instead of being obeyed.
"""

from __future__ import annotations

import codecs
import re

from rich.markup import escape
from rich.text import Text

# DEL and the C1 controls (CSI is \x9b), line and paragraph separators, and the bidi marks,
# embeddings, overrides and isolates
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# plus every C0 control, ESC among them
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
# a log keeps its line ends (\n) and tabs (\t); everything else that moves the cursor is shown
_UNSAFE_IN_LOGS = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` on one line, with every control character shown as its escape."""
    return _UNSAFE.sub(_shown, text)


def plain(text: str) -> Text:
    """A renderable that shows ``text`` as it is: never markup, controls made visible."""
    return Text(visible(text))


def markup(text: str) -> str:
    """``text`` made safe to put inside a markup string of our own."""
    return escape(visible(text))


def plain_lines(data: bytes) -> Text:
    """Like :func:`plain`, for a whole file of lines: line ends and tabs kept."""
    return Text(LogText().feed(data, final=True))


class LogText:
    """Turns a job's log, arriving in chunks of bytes, into text safe for a terminal: lines
    and tabs kept, ``\\r\\n`` read as a line end, every other control shown as its escape,
    and bytes that are not UTF-8 shown as ``\\xNN``."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self._held = ""

    def feed(self, chunk: bytes, final: bool = False) -> str:
        text = self._held + self._decoder.decode(chunk, final)
        # a \r at the end of a chunk may be the first half of a \r\n
        self._held = "\r" if text.endswith("\r") and not final else ""
        if self._held:
            text = text[:-1]
        return _UNSAFE_IN_LOGS.sub(_shown, text.replace("\r\n", "\n"))
