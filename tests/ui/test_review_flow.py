"""Acceptance 1 and 4 in the browser: a publisher reviews a held output with its flagged cells
highlighted, rejects one file and approves another; the consumer is then offered exactly the
approved file and its receipt shows both decisions. Nobody reviews their own job, and a
consumer opens no review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atoll.models.ddo import ComputePolicy
from atoll.models.output_policy import OutputPolicy
from atoll.models.status import JobStatus
from tests.helpers import Running
from tests.ui.conftest import Watched, cli_login, key_file, sign_in

DATA = "city,age\n" + "".join(f"{c},{60 + i}\n" for i, c in enumerate(["north", "south"] * 30))
TABLES = (
    "open('/data/outputs/counts.csv', 'w').write('city,count\\nnorth,3\\nsouth,25\\neast,30\\n')\n"
    "open('/data/outputs/tiny.csv', 'w').write('city,count\\nwest,2\\n')\n"
    "print('done')\n"
)


def checked_dataset(p: Running, name: str) -> str:
    policy = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="auto"))
    return p.dataset(text=DATA, name=name, policy=policy)


def test_review_in_the_browser_then_the_consumer_gets_exactly_the_approved_file(
    browser: Any, provider: Running, pages: list[Watched], tmp_path: Path
) -> None:
    did = checked_dataset(provider, "ui-review")
    info = provider.consumer.start(did, rawcode=TABLES)
    info = provider.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.AWAITING_REVIEW, info.review
    names = {r.index: r.filename for r in provider.node.context.reviews().store.files(info.jobId)}
    counts = next(i for i, n in names.items() if n == "counts.csv")
    tiny = next(i for i, n in names.items() if n == "tiny.csv")

    assert provider.publisher.key is not None
    pub = sign_in(browser, provider, provider.publisher.key, pages)
    pub.goto("/ui/review")
    assert pub.page.locator(f"a.held[href='/ui/review/{info.jobId}/{counts}']").count() == 1
    pub.page.click(f"a.held[href='/ui/review/{info.jobId}/{counts}']")
    # a click returns once the next page is asked for, not once it has loaded
    pub.page.wait_for_url(f"**/ui/review/{info.jobId}/{counts}")
    # the small cell the checks named (row 2, column 2: north's count of 3) is highlighted,
    # and so is its row; the cells the checks did not name are not
    flagged = pub.page.locator("#preview td.flagged")
    assert flagged.all_inner_texts() == ["3"], pub.page.inner_text("#reasons")
    assert pub.page.locator("#preview tr.flagged th").all_inner_texts() == ["2"]
    assert "small_cells" in pub.page.inner_text("#reasons")
    # a histogram of the numeric column, drawn on the server
    assert pub.page.locator("figure.chart svg rect.bar").count() > 0

    pub.page.fill("#reason", "north's count of 3 is too small to release")
    pub.page.click("#reject")
    pub.page.wait_for_selector("#settled")
    assert pub.page.inner_text("#state") == "rejected"
    pub.goto(f"/ui/review/{info.jobId}/{tiny}")
    pub.page.fill("#reason", "a single west row, agreed with the consumer")
    pub.page.click("#approve")
    pub.page.wait_for_selector("#settled")
    assert pub.page.inner_text("#state") == "released"
    assert "approve by" in pub.page.inner_text("#decisions")
    pub.clean()

    assert provider.consumer.key is not None
    con = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path), pages)
    con.goto(f"/ui/jobs/{info.jobId}")
    offered = [
        t for t in con.page.locator("#results a.result").all_inner_texts() if t != "algorithm.log"
    ]
    assert offered == ["tiny.csv"]
    with con.page.expect_download() as download:
        con.page.click("#results a.result:text-is('tiny.csv')")
    assert Path(download.value.path()).read_text() == "city,count\nwest,2\n"
    assert con.page.inner_text("#receipt-check").startswith("Verified")
    decisions = con.page.inner_text("#decisions")
    assert f"result {tiny}: approve" in decisions
    assert f"result {counts}: reject" in decisions
    con.clean()


def test_no_one_approves_their_own_job_and_a_consumer_opens_no_review(
    browser: Any, provider: Running, pages: list[Watched], tmp_path: Path
) -> None:
    did = checked_dataset(provider, "ui-own")
    own = provider.publisher.start(did, rawcode=TABLES)
    own = provider.publisher.wait(own.jobId, timeout=60)
    theirs = provider.consumer.start(did, rawcode=TABLES)
    theirs = provider.consumer.wait(theirs.jobId, timeout=60)
    held = provider.node.context.reviews().store.files(own.jobId)
    index = next(f.index for f in held if f.filename == "counts.csv")

    assert provider.publisher.key is not None
    pub = sign_in(browser, provider, provider.publisher.key, pages)
    pub.goto(f"/ui/review/{own.jobId}/{index}")
    assert pub.page.locator("#own").count() == 1
    assert pub.page.locator("#decide").count() == 0
    # the form is not there; the request made without it is refused all the same
    status = pub.page.evaluate(
        """async ([prepare, decide]) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const who = document.getElementById("who").textContent.trim();
          const headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "Accept": "application/json", "X-CSRF-Token": csrf};
          const fields = {decision: "approve", reason: "mine"};
          const p = await (await fetch(prepare, {method: "POST", headers,
                           body: new URLSearchParams(fields)})).json();
          const signature = await window.ethereum.request(
              {method: "personal_sign", params: [p.hash, who]});
          const r = await fetch(decide, {method: "POST", headers, body: new URLSearchParams(
              {...fields, nonce: String(p.nonce), signature})});
          return [r.status, (await r.json()).error];
        }""",
        [f"/ui/review/{own.jobId}/{index}/prepare", f"/ui/review/{own.jobId}/{index}/decide"],
    )
    assert status[0] == 403 and "own job" in status[1]
    pub.clean()

    assert provider.consumer.key is not None
    con = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path), pages)
    con.goto("/ui/review")
    assert "Nothing is held for you" in con.page.inner_text("#queue")
    for path in (f"/ui/review/{theirs.jobId}/0", f"/ui/review/{theirs.jobId}/0/image"):
        answer = con.goto(path)
        assert answer.status == 404, path
    con.clean()


def test_the_second_reviewer_sees_the_first_decision_and_completes_the_release(
    browser: Any, provider: Running, pages: list[Watched]
) -> None:
    assert provider.other.key is not None and provider.publisher.key is not None
    second = provider.other.key
    policy = ComputePolicy(
        allowRawAlgorithm=True,
        outputPolicy=OutputPolicy(mode="auto", reviewers=[second.address], reviewersRequired=2),
    )
    did = provider.dataset(text=DATA, name="ui-two-reviewers", policy=policy)
    info = provider.consumer.wait(provider.consumer.start(did, rawcode=TABLES).jobId, 60)
    files = provider.node.context.reviews().store.files(info.jobId)
    tiny = next(f.index for f in files if f.filename == "tiny.csv")

    first = sign_in(browser, provider, provider.publisher.key, pages)
    first.goto(f"/ui/review/{info.jobId}/{tiny}")
    first.page.fill("#reason", "fine by me")
    first.page.click("#approve")
    first.page.wait_for_selector("#already")
    assert first.page.inner_text("#state") == "held"
    first.clean()

    other = sign_in(browser, provider, second, pages)
    other.goto("/ui/review")
    row = other.page.locator("#queue tr", has_text="tiny.csv")
    assert "1 / 2" in row.inner_text()
    row.locator("a.held").click()
    assert f"approve by {provider.publisher.key.address}" in other.page.inner_text("#decisions")
    assert "fine by me" in other.page.inner_text("#decisions")
    other.page.fill("#reason", "agreed")
    other.page.click("#approve")
    other.page.wait_for_selector("#settled")
    assert other.page.inner_text("#state") == "released"
    other.clean()
