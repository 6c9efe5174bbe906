"""Encoded payloads in text are found, ordinary aggregates and logs are not."""

from __future__ import annotations

import base64
import binascii
import codecs
import gzip
import os
import random
import string

from atoll.disclosure.encoded import (
    compressed,
    entropy,
    find_encoded,
    find_in_runs,
    find_uuencoded,
)
from tests.disclosure.texts import texts

DATA = b"patient_id,name,age\nP10001,Ada Abbott,34\nP10002,Bruno Baptiste,58\n" * 4


def _details(text: str) -> list[str]:
    return [f.detail for f in find_encoded(text)]


def test_base64_is_found_with_its_line() -> None:
    assert _details("result:\n" + base64.b64encode(DATA).decode()) == ["base64 at line 2"]


def test_base64_of_compressed_data_is_named() -> None:
    text = base64.b64encode(gzip.compress(DATA)).decode()
    assert _details(text) == ["base64 holding gzip data at line 1"]


def test_hex_and_digit_runs_are_found() -> None:
    assert _details(DATA.hex()) == ["hex at line 1"]
    assert _details(str(int.from_bytes(DATA, "big"))) == ["a long run of digits at line 1"]


def test_random_text_blocks_are_found_by_their_entropy() -> None:
    rng = random.Random(0)
    block = "".join(rng.choice(string.ascii_letters + "!#$%&*~^") for _ in range(80))
    assert _details(f"x = {block}\n") == ["a high-entropy block at line 1"]


def test_aggregates_and_logs_have_no_payload() -> None:
    text = (
        "region,count,mean_income\nnorth,120,51234.12\n"
        'Traceback (most recent call last):\n  File "/algo/main.py", line 3\n'
        "epoch 3 loss 0.6931 accuracy 0.812\n"
        "wrote /data/outputs/summary_by_region_and_sex.csv\n"
    )
    assert find_encoded(text) == []


def test_signatures_and_entropy() -> None:
    assert compressed(gzip.compress(b"x")) == "gzip"
    assert compressed(b"plain") is None
    assert entropy("aaaa") == 0.0
    assert entropy(base64.b64encode(os.urandom(300)).decode()) > 5.5


def test_searching_the_long_runs_finds_what_a_search_of_the_whole_text_finds() -> None:
    for text in texts(300):
        # what is found in no run but wrapped across several is looked for apart
        in_runs = [f for f in find_encoded(text) if "wrapped into short pieces" not in f.detail]
        assert in_runs == find_in_runs(text, [(0, len(text))]), text


def test_payloads_found_in_the_marked_runs_are_those_found_in_the_text() -> None:
    """The runs read from the marks made as the file was told text are those the text's own
    search finds, and so are the payloads in them."""
    from atoll.disclosure.runs import text_marks
    from tests.disclosure.texts import texts

    for text in texts(300, seed=8):
        marks = text_marks(text.encode())
        assert find_encoded(text, marks) == find_encoded(text), text


def _wrapped(text: str, width: int, sep: str = "\n") -> str:
    return sep.join(text[i : i + width] for i in range(0, len(text), width))


def test_payloads_wrapped_into_short_pieces_are_found() -> None:
    packed = base64.b64encode(gzip.compress(DATA)).decode()
    cases = {
        _wrapped(base64.b64encode(DATA).decode(), 20): "base64",
        _wrapped(base64.b64encode(DATA).decode(), 16, " "): "base64",
        _wrapped(packed, 12): "base64 holding gzip data",
        str([packed[i : i + 20] for i in range(0, len(packed), 20)]): "base64 holding gzip data",
        _wrapped(DATA.hex(), 16): "hex",
        _wrapped(DATA.hex(), 8, " "): "hex",
        _wrapped(base64.b32encode(DATA).decode(), 16): "base32",
        _wrapped(base64.b64encode(os.urandom(600)).decode(), 24): "base64",
    }
    for text, kind in cases.items():
        assert f"{kind} wrapped into short pieces at line 2" in _details("wrapped:\n" + text)


def test_tables_prose_and_identifiers_in_short_pieces_are_not_payloads() -> None:
    rng = random.Random(3)
    floats = "\n".join(",".join(f"{rng.random() * 1e4:.6f}" for _ in range(6)) for _ in range(200))
    counts = "\n".join(
        ",".join(str(rng.randint(10**7, 10**9)) for _ in range(6)) for _ in range(200)
    )
    prose = "international organisations collaborated extensively throughout seventeen countries"
    uuids = "\n".join(str(__import__("uuid").UUID(int=rng.getrandbits(128))) for _ in range(20))
    columns = "patient_identifier,household_income,observation_weights,confidence_interval\n"
    names = (
        "sha256:9f86d081884c7d65 model_checkpoint_epoch_0012 learning_rate_schedule_cosine2 "
        "ValidationAccuracy_Top5 TrainingLoss_EMA0999 LogisticRegression RandomForest"
    )
    labels = (
        " ".join(f"Epoch_{i:03d}" for i in range(1, 9))
        + "\n"
        + "\n".join(f"run_{i:04d}_seed{i % 7}" for i in range(12))
    )
    short_ids = "runs: 3f2a9c1e 7b8d0e11 a1b2c3d4 deadbeef"
    for text in [floats, counts, prose, uuids, columns, names, labels, short_ids]:
        assert not [d for d in _details(text) if "wrapped" in d], text[:80]


def test_uuencoded_lines_are_found_with_their_line() -> None:
    payload = ("P10001,Ada Abbott,ada.abbott1@example.org,1961-04-02,F,north,34\n" * 8).encode()
    lines = b"".join(binascii.b2a_uu(payload[i : i + 45]) for i in range(0, len(payload), 45))
    for text in [
        "log\n" + lines.decode(),
        "log\r\n" + lines.decode().replace("\n", "\r\n"),
        "log\n" + codecs.encode(payload, "uu").decode(),
    ]:
        found = find_encoded(text)
        assert [f.detail for f in found if "uuencoded" in f.detail] == [
            "uuencoded data at line 2" if "begin" not in text else "uuencoded data at line 3"
        ]
    # two full lines are short of a payload; lines of prose as long are none
    assert find_uuencoded("x\n" + "".join(lines.decode().splitlines(True)[:2])) == []
    prose = "Model fit for every region, weighted by the survey's designs:"
    assert len(prose) == 61
    assert find_uuencoded("\n".join([prose] * 5)) == []
