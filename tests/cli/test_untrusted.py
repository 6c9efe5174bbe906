"""Text from others (DDO names, tags, result file names, job logs) is shown as plain text:
never read as markup, and with every control and escape sequence made visible."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.cli.untrusted import LogText, markup, visible
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.output_policy import OutputPolicy
from tests.helpers import Running, require_sandbox, running_provider

ESC = "\x1b"
# markup a publisher might try, each of which Rich would read as a tag
MARKUP_NAMES = ["closing [/oops] tag", "[link=http://x]click[/link]", "[bold red]alarm"]
# what a terminal would obey: colour, clear screen, an OSC 8 link, carriage return,
# backspace, a bidi override, and CSI in its one-byte C1 form
CONTROL_NAME = "a\x1b[31mred\x1b[2J\x1b]8;;http://x\x07link\x1b]8;;\x07\rover\x08\u202eevil\x9b1m"
HOSTILE_LOG = (
    "plain line\n"
    "\x1b[31mred\x1b[0m\n"
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\n"
    "progress 10%\rprogress 99%\n"
    "bs\x08\x08\u202edrow\n"
    "[bold]not bold[/bold] [/oops]\n"
)
HOSTILE_FILE = "[red]x\x1b[2J.txt"  # a file name holds no /, so no closing tag


def test_visible_shows_every_control_as_its_escape() -> None:
    shown = visible(CONTROL_NAME)
    assert shown == (
        "a\\x1b[31mred\\x1b[2J\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07"
        "\\x0dover\\x08\\u202eevil\\x9b1m"
    )
    assert visible("line\nbreak\ttab\u2028") == "line\\x0abreak\\x09tab\\u2028"
    # what is not a control stays as it is, emoji and accents included
    assert visible("résumé 📈 ok") == "résumé 📈 ok"
    assert markup("[/oops]") == "\\[/oops]"


def test_log_text_keeps_lines_and_shows_the_rest() -> None:
    text = LogText()
    # chunks split inside \r\n and inside a UTF-8 character
    data = "a\r\nb\rc\x1b[2Jé\n".encode()
    out = "".join(text.feed(data[i : i + 1]) for i in range(len(data))) + text.feed(b"", True)
    assert out == "a\nb\\x0dc\\x1b[2Jé\n"
    assert LogText().feed(b"\xff\xfe ok\tend\r", final=True) == "\\xff\\xfe ok\tend\\x0d"


def atoll(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "COLUMNS": "80", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args], capture_output=True, text=True, env=env
    )


def assert_plain(out: str) -> None:
    """Nothing a terminal would act on: no control but line ends, no bidi override."""
    assert ESC not in out and "\x9b" not in out and "\x07" not in out and "\x08" not in out
    assert "\r" not in out and "\u202e" not in out


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def test_hostile_names_and_logs_render_as_plain_text(provider: Running, tmp_path: Path) -> None:
    common = ["--provider", provider.url, "--key", str(provider.home / "key")]
    dids = {}
    for i, name in enumerate([*MARKUP_NAMES, CONTROL_NAME]):
        data = provider.data_dir() / f"d{i}.csv"
        data.write_text(f"a\n{i}\n")
        meta = Metadata(name=name, type="dataset", tags=["hostile", "[/x]"])
        # open data: the job's hostile names and log are released unchecked, to be shown
        open_data = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="off"))
        dids[name] = provider.publisher.publish(meta, [str(data)], open_data).id

    listed = atoll("assets", "list", "hostile", *common)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert_plain(listed.stdout)
    for name in MARKUP_NAMES:
        # the markup is printed as written, not applied, not dropped
        assert name in listed.stdout
    assert visible(CONTROL_NAME) in listed.stdout
    assert "tags: hostile, [/x]" in listed.stdout
    for did in dids.values():
        assert did in listed.stdout.splitlines()

    algo = tmp_path / "noisy.py"
    algo.write_text(
        "import sys\n"
        f"sys.stdout.buffer.write({HOSTILE_LOG.encode()!r})\n"
        f"open('/data/outputs/' + {HOSTILE_FILE!r}, 'w').write('x')\n"
    )
    did = dids[MARKUP_NAMES[0]]
    run = atoll("compute", "run", did, "--algorithm", str(algo), "--wait", *common)
    job_id = next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("job "))
    logs = atoll("compute", "logs", job_id, *common)
    assert run.returncode == 0, logs.stdout
    assert_plain(run.stdout)
    assert visible(HOSTILE_FILE) in run.stdout
    assert logs.returncode == 0, logs.stderr
    assert_plain(logs.stdout)
    assert logs.stdout.splitlines() == [
        "plain line",
        "\\x1b[31mred\\x1b[0m",
        "\\x1b]8;;http://evil.example\\x1b\\click\\x1b]8;;\\x1b\\",
        "progress 10%\\x0dprogress 99%",
        "bs\\x08\\x08\\u202edrow",
        "[bold]not bold[/bold] [/oops]",
    ]
    raw = subprocess.run(
        [sys.executable, "-m", "atoll", "compute", "logs", job_id, "--raw", *common],
        capture_output=True,
    )
    assert raw.stdout == HOSTILE_LOG.encode()
