"""Every error a user can cause, through the real ``atoll`` command: one line on stderr, no
traceback, and the documented exit status; refusals come before anything is paid for."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.cli import exits
from atoll.models.ddo import ComputePolicy
from atoll.models.status import JobStatus
from atoll.sdk.endpoint import DEFAULT_URL, RECORD, provider_url, recorded
from atoll.server import free_port
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

UNREACHABLE = "http://127.0.0.1:9"


def atoll(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "COLUMNS": "80"}
    if home is not None:
        env["ATOLL_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args], capture_output=True, text=True, env=env
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert "Traceback" not in done.stdout


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    out = {
        "algo": d / "algo.py",
        "binary": d / "binary.py",
        "data": d / "data.csv",
        "garbage_key": d / "garbage.key",
        "not_receipt": d / "receipt.json",
    }
    out["algo"].write_text("print('hi')\n")
    out["binary"].write_bytes(b"\xff\xfe\x00code")
    out["data"].write_text("a\n1\n")
    out["garbage_key"].write_text("not a key\n")
    out["not_receipt"].write_text("{}")
    out["dir"] = d
    return out


# refused on this side, before the provider (unreachable here) is asked anything
OFFLINE = {
    "param type": (["--param", "threshold:numbr"], "the type is one of"),
    "param flag": (["--param", "threshold:number:maybe"], "only 'required' may follow"),
    "param name": (["--param", "1x:number"], "a name is letters"),
    "param default": (["--param", "threshold:number=abc"], "must be a number"),
    "select without choices": (["--param", "mode:select"], "needs --choice mode=A,B,C"),
    "select default": (
        ["--param", "mode:select=d", "--choice", "mode=a,b,c"],
        "must be one of: a, b, c",
    ),
    "choice without param": (["--choice", "mode=a,b,c"], "no select parameter mode"),
    "choice on a number": (
        ["--param", "n:number", "--choice", "n=1,2"],
        "n is a number parameter, not select",
    ),
    "choice without options": (["--param", "m:select", "--choice", "m="], "takes NAME=A,B,C"),
}


@pytest.mark.parametrize("case", OFFLINE, ids=list(OFFLINE))
def test_publish_algorithm_parameter_mistakes(case: str, files: dict[str, Path]) -> None:
    args, says = OFFLINE[case]
    base = ["publish", "algorithm", str(files["algo"]), "--name", "a"]
    done = atoll(*base, *args, "--provider", UNREACHABLE, home=files["dir"])
    one_line_error(done, exits.ERROR, says)


def test_command_line_mistakes(files: dict[str, Path]) -> None:
    home, data, algo = files["dir"], str(files["data"]), str(files["algo"])
    off = ["--provider", UNREACHABLE]
    one_line_error(atoll("compute", "list", "--bogus"), exits.USAGE, "No such option: --bogus")
    one_line_error(atoll("publish", "dataset", data), exits.USAGE, "Missing option '--name'")
    for price, says in [("abc", "is not a number"), ("1e-19", "at most 18 decimals")]:
        done = atoll("publish", "dataset", data, "--name", "d", "--price", price, *off, home=home)
        one_line_error(done, exits.ERROR, says)
    run = ["compute", "run", "did:atoll:00", *off]
    done = atoll(*run, "--algorithm", str(files["binary"]), home=home)
    one_line_error(done, exits.ERROR, "is not UTF-8 text")
    done = atoll(*run, "--algorithm", str(home / "missing.py"), home=home)
    one_line_error(done, exits.ERROR, "neither a file nor a DID")
    done = atoll(*run, "--algorithm", algo, "--param", "novalue", home=home)
    one_line_error(done, exits.ERROR, "--param takes NAME=VALUE")
    done = atoll("compute", "list", "--key", str(home), *off)
    one_line_error(done, exits.ERROR, "cannot read the key file")
    done = atoll("compute", "list", "--key", str(files["garbage_key"]), *off)
    one_line_error(done, exits.ERROR, "does not hold a hex private key")
    done = atoll("receipt", "verify", str(files["not_receipt"]))
    one_line_error(done, exits.ERROR, "is not a receipt")


def test_unreachable_provider(files: dict[str, Path]) -> None:
    key = files["dir"] / "user.key"
    if not key.exists():
        Key.generate().save(key)
    for url in (UNREACHABLE, "http://[::1"):
        done = atoll("compute", "list", "--provider", url, "--key", str(key))
        one_line_error(done, exits.ERROR, "")
        assert "provider" in done.stderr


def test_help_shows_exit_statuses_and_version() -> None:
    done = atoll("--help")
    assert done.returncode == 0
    for code in (exits.OK, exits.ERROR, exits.USAGE, exits.JOB_FAILED, exits.INTERRUPTED):
        assert re.search(rf"^\s+{code}\s+\S", done.stdout, re.M), done.stdout
    from importlib.metadata import version

    done = atoll("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"atoll {version('atoll')}"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path_factory.mktemp("node") / "home") as running:
        yield running


def test_refused_before_paying(provider: Running, files: dict[str, Path]) -> None:
    """An unknown DID, a bad parameter or algorithm: refused before any agreement is ordered,
    so nothing is paid."""
    key = files["dir"] / "consumer.key"
    provider.consumer.key.save(key)  # type: ignore[union-attr]
    common = ["--provider", provider.url, "--key", str(key)]
    pub = ["--provider", provider.url, "--key", str(provider.home / "key")]
    # the dataset trusts what its publisher publishes, the algorithm below among them
    trusting = ComputePolicy(
        allowRawAlgorithm=True,
        publisherTrustedAlgorithmPublishers=[provider.publisher.key.address],  # type: ignore[union-attr]
    )
    did = provider.dataset(files["dir"], name="priced", price=10**18, policy=trusting)
    # published code must sit inside a data root
    algo = provider.data_dir() / "algo.py"
    algo.write_text(files["algo"].read_text())
    published = atoll(
        "publish", "algorithm", str(algo), "--name", "algo",
        "--param", "threshold:number=3", "--param", "mode:select:required=b",
        "--choice", "mode=a,b,c", *pub,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    algo_did = published.stdout.strip()
    shown = json.loads(atoll("assets", "show", algo_did, *pub).stdout)
    params = shown["metadata"]["algorithm"]["consumerParameters"]
    assert [(p["name"], p["type"], p["required"], p["default"], p["options"]) for p in params] == [
        ("threshold", "number", False, 3, []),
        ("mode", "select", True, "b", ["a", "b", "c"]),
    ]

    before = provider.consumer.wallet.balances()["tokens"]
    cases = [
        (["did:atoll:" + "0" * 64, "--algorithm", str(files["algo"])], "unknown asset"),
        (["not-a-did", "--algorithm", str(files["algo"])], ""),
        ([did, "--algorithm", algo_did, "--param", "threshold=abc"], "must be a number"),
        ([did, "--algorithm", algo_did, "--param", "mode=z"], "must be one of"),
        ([did, "--algorithm", algo_did, "--param", "nope=1"], "unknown parameter"),
        ([did, "--algorithm", "did:atoll:" + "1" * 64], "unknown asset"),
    ]
    for args, says in cases:
        done = atoll("compute", "run", *args, *common)
        one_line_error(done, exits.ERROR, says)
        assert "ordering" not in done.stdout
    assert provider.consumer.wallet.balances()["tokens"] == before
    one_line_error(atoll("assets", "show", "nonsense", *common), exits.ERROR, "")
    one_line_error(atoll("compute", "status", "nojob", *common), exits.ERROR, "")


def test_results_after_delete(provider: Running, files: dict[str, Path], tmp_path: Path) -> None:
    key = files["dir"] / "consumer2.key"
    provider.other.key.save(key)  # type: ignore[union-attr]
    common = ["--provider", provider.url, "--key", str(key)]
    did = provider.dataset(tmp_path, name="deleted")
    run = atoll("compute", "run", did, "--algorithm", str(files["algo"]), "--wait", *common)
    assert run.returncode == 0, run.stdout + run.stderr
    job = re.search(r"^job\s+(\S+)$", run.stdout, re.M)
    assert job is not None
    job_id = job.group(1)
    assert atoll("compute", "delete", job_id, *common).returncode == 0
    done = atoll("compute", "results", job_id, "--to", str(tmp_path / "out"), *common)
    one_line_error(done, exits.ERROR, "were deleted")
    one_line_error(atoll("compute", "logs", job_id, *common), exits.ERROR, "removed")


def test_interrupt_names_the_job_and_stop_shows_the_stopped_status(
    provider: Running, files: dict[str, Path], tmp_path: Path
) -> None:
    common = ["--provider", provider.url, "--key", str(provider.home / "key")]
    did = provider.dataset(tmp_path, name="stopped")
    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import time\ntime.sleep(120)\n")
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}
    run = ["compute", "run", did, "--algorithm", str(sleeper), "--wait", *common]
    proc = subprocess.Popen(
        [sys.executable, "-m", "atoll", *run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as a terminal would have it: a test run in the background inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    job_id = ""
    for line in proc.stdout:
        if line.startswith("started job "):
            job_id = line.split()[-1]
            break
    assert job_id, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == exits.INTERRUPTED, out + errors
    assert f"atoll compute status {job_id} --wait" in errors
    assert len(errors.splitlines()) == 1 and "Traceback" not in errors

    stopped = atoll("compute", "stop", job_id, *common)
    assert stopped.returncode == 0, stopped.stderr
    # the status once the job has stopped, not the one it had when the stop was asked
    stopped_line = f"status   {int(JobStatus.STOPPED)} "
    assert stopped_line in stopped.stdout, stopped.stdout
    again = atoll("compute", "stop", job_id, *common)
    assert again.returncode == 0 and stopped_line in again.stdout
    assert "already ended" in again.stderr


def test_the_cli_finds_the_provider_serve_records(tmp_path: Path) -> None:
    Key.generate().save(tmp_path / "key")
    assert provider_url(tmp_path) == DEFAULT_URL
    url = f"http://127.0.0.1:{free_port()}"
    with recorded(tmp_path, url):
        assert provider_url(tmp_path) == url
        done = atoll("compute", "list", home=tmp_path)
    # the command asked the recorded provider (none listens there, and the error names it)
    one_line_error(done, exits.ERROR, f"cannot reach the provider at {url}")
    assert not (tmp_path / RECORD).exists()
    # a record left by a server that was killed names a process that is gone: ignored
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / RECORD).write_text(json.dumps({"url": url, "pid": dead.pid}))
    assert provider_url(tmp_path) == DEFAULT_URL


def test_an_internal_fault_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from atoll.cli.main import run

    def broken() -> Key:
        raise RuntimeError("boom\nand a second line")

    monkeypatch.setattr(Key, "generate", broken)
    assert run(["keys", "new", "--key", str(tmp_path / "k")]) == exits.INTERNAL
    errors = capsys.readouterr().err
    assert errors == "error: internal error (RuntimeError: boom)\n"
