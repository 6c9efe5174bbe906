"""Acceptance 5 and the publisher's pages: every page renders with its own styles and script
while the browser may reach nothing but the provider; a policy is edited through the page;
the earnings page lists the agreements on my datasets."""

from __future__ import annotations

from typing import Any

from atoll.models.ddo import ComputePolicy
from atoll.models.output_policy import OutputPolicy
from atoll.signing import Key
from tests.helpers import Running
from tests.ui.conftest import Watched, sign_in

TABLE = "open('/data/outputs/t.csv', 'w').write('city,count\\nnorth,3\\nsouth,40\\n')\n"


def test_every_page_works_with_the_network_beyond_the_provider_blocked(
    browser: Any, provider: Running, pages: list[Watched]
) -> None:
    policy = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="auto"))
    did = provider.dataset(name="ui-pages", policy=policy, price=5)
    provider.publisher.mock_attach(did, "a,b\n1,2\n")
    job = provider.consumer.wait(provider.consumer.start(did, rawcode=TABLE).jobId, 60)
    dry = provider.publisher.dryrun_start(did, rawcode="print(1)\n")
    held = next(f.index for f in provider.node.context.reviews().store.files(job.jobId))
    assert provider.publisher.key is not None
    w = sign_in(browser, provider, provider.publisher.key, pages)
    mine = provider.publisher.wait(provider.publisher.start(did, rawcode="print(2)\n").jobId, 60)
    paths = [
        "/ui/",
        "/ui/catalogue",
        "/ui/catalogue?tag=test",
        f"/ui/assets/{did}",
        "/ui/jobs",
        f"/ui/jobs/{mine.jobId}",
        f"/ui/dryruns/{dry.jobId}",
        "/ui/mine",
        f"/ui/assets/{did}/policy",
        "/ui/published",
        f"/ui/published/{job.jobId}",
        "/ui/review",
        f"/ui/review/{job.jobId}/{held}",
        "/ui/earnings",
    ]
    for path in paths:
        answer = w.goto(path)
        assert answer.status == 200, path
        w.page.wait_for_load_state("networkidle")
        # the page's own stylesheet was loaded from the provider
        colour = w.page.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor")
        assert colour == "rgb(13, 59, 76)", path
        assert w.page.inner_text("h1"), path
    assert "1 /" in w.page.inner_text("#agreements") or "/ 1" in w.page.inner_text("#agreements")
    # the overview's charts are drawn on the server: the job durations have a bar per job
    w.goto("/ui/")
    charts = w.page.locator("figure.chart")
    assert charts.count() == 2
    assert charts.nth(0).locator("rect.bar").count() == 1
    w.clean()


def test_a_publisher_edits_its_policy_through_the_page(
    browser: Any, provider: Running, pages: list[Watched]
) -> None:
    did = provider.dataset(name="ui-policy")
    reviewer = Key.generate().address
    assert provider.publisher.key is not None
    w = sign_in(browser, provider, provider.publisher.key, pages)
    w.goto("/ui/mine")
    w.page.locator("#mine tr", has_text="ui-policy").locator("a.edit").click()
    w.page.select_option("#mode", "review")
    w.page.fill("#reviewers", reviewer)
    w.page.click("#save")
    w.page.wait_for_url("**saved=1")
    out = provider.publisher.asset(did).service("compute").compute.outputPolicy  # type: ignore[union-attr]
    assert out.mode == "review" and out.reviewers == [reviewer]
    # what the publishing service refuses, the page refuses with its reason
    w.page.fill("#reviewers", "not-an-address")
    w.page.click("#save")
    assert "not valid" in w.page.inner_text("#error")
    w.clean()
