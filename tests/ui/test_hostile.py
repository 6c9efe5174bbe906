"""Acceptance 3: what a stranger or a job wrote is shown as text and never runs — a DDO's
name and description, an output's file name, a CSV cell, an SVG and a log line, each
carrying script. The pages are watched for dialogs and script errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.output_policy import OutputPolicy
from tests.helpers import OPEN_DATA, Running
from tests.ui.conftest import Watched, cli_login, key_file, sign_in

NAME = "<script>alert('name')</script><img src=x onerror=alert('img')>"
FILE = "<img src=x onerror=alert('file')>.csv"
CELL = "<script>alert('cell')</script>"
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(\'svg\')" width="40" height="40">'
    "<script>alert('svg script')</script><rect width='40' height='40' fill='red'/></svg>"
)
LINE = "<script>alert('log')</script><img src=x onerror=alert('log img')>"
JOB = (
    f"open('/data/outputs/' + {FILE!r}, 'w').write('label,value\\n' + {CELL!r} + ',1\\n')\n"
    f"open('/data/outputs/plot.svg', 'w').write({SVG!r})\n"
    f"print({LINE!r}, flush=True)\n"
)


def publish(p: Running, policy: ComputePolicy, suffix: str) -> str:
    where = p.data_dir() / "data.csv"
    where.write_text("a,b\n1,2\n3,4\n")
    where.chmod(0o644)
    meta = Metadata(name=NAME + suffix, type="dataset", tags=["hostile"], description=NAME)
    return p.publisher.publish(meta, [str(where)], policy).id


def test_hostile_text_is_shown_as_text_and_never_runs(
    browser: Any, provider: Running, pages: list[Watched], tmp_path: Path
) -> None:
    held = publish(
        provider,
        ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="review")),
        "",
    )
    open_data = publish(provider, OPEN_DATA, " open")
    reviewed = provider.consumer.wait(provider.consumer.start(held, rawcode=JOB).jobId, 60)
    released = provider.consumer.wait(provider.consumer.start(open_data, rawcode=JOB).jobId, 60)
    files = {
        f.filename: f.index for f in provider.node.context.reviews().store.files(reviewed.jobId)
    }

    assert provider.consumer.key is not None
    con = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path), pages)
    con.goto("/ui/catalogue?tag=hostile")
    assert {NAME, NAME + " open"} <= set(con.page.locator("#assets a.asset").all_inner_texts())
    con.goto(f"/ui/assets/{held}")
    assert con.page.inner_text("h1") == NAME
    assert con.page.inner_text("#description") == NAME
    con.goto(f"/ui/jobs/{released.jobId}")
    names = con.page.locator("#results a.result").all_inner_texts()
    assert FILE in names and "plot.svg" in names
    con.clean()

    assert provider.publisher.key is not None
    pub = sign_in(browser, provider, provider.publisher.key, pages)
    pub.goto("/ui/review")
    assert FILE in pub.page.locator("#queue a.held").all_inner_texts()
    pub.goto(f"/ui/review/{reviewed.jobId}/{files[FILE]}")
    assert pub.page.inner_text("#filename") == FILE
    assert pub.page.locator("#preview td").first.inner_text() == CELL
    pub.goto(f"/ui/review/{reviewed.jobId}/{files['plot.svg']}")
    # the SVG is an <img> (which runs no script) and its source is text
    assert pub.page.locator("img#image").count() == 1
    assert pub.page.inner_text("#text") == SVG
    pub.page.wait_for_load_state("networkidle")
    # opened on its own, the image is a sandboxed document: no script, no origin
    image = pub.goto(f"/ui/review/{reviewed.jobId}/{files['plot.svg']}/image")
    assert image.headers["content-security-policy"].startswith("sandbox")
    pub.goto(f"/ui/review/{reviewed.jobId}/{files['algorithm.log']}")
    assert LINE in pub.page.inner_text("#text")
    pub.clean()

    # the log line as its consumer reads it live: pushed as data, put in as text
    live = provider.consumer.start(open_data, rawcode="import time\ntime.sleep(2)\n" + JOB)
    con2 = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path / "2"), pages)
    con2.goto(f"/ui/jobs/{live.jobId}")
    con2.page.wait_for_selector("#results a.result", timeout=60_000)
    expect(con2.page.locator("#log")).to_contain_text(LINE, timeout=30_000)
    assert LINE in con2.page.inner_text("#log")
    con2.clean()


def test_a_hostile_name_cannot_break_out_of_a_page(provider: Running) -> None:
    """The markup itself: escaped, not merely not run."""
    did = publish(provider, OPEN_DATA, " raw")
    page = httpx.get(f"{provider.url}/ui/assets/{did}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page
