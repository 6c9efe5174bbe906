"""Acceptance 2 in the browser: a consumer signed in with `atoll ui login` finds a dataset by
tag, dry-runs an algorithm on its mock data, watches a real job's log arrive as it is written
(server-sent events) and downloads its results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from atoll.models.ddo import Metadata
from tests.helpers import OPEN_DATA, Running
from tests.ui.conftest import Watched, cli_login, key_file

DATA = "station,temp\n" + "".join(f"s{i},{10 + i % 7}\n" for i in range(40))
MOCK = "station,temp\nm1,1\nm2,2\nm3,3\n"
DRY = (
    "import glob\nrows = open(glob.glob('/data/inputs/*/0')[0]).read().splitlines()\n"
    "open('/data/outputs/rows.txt', 'w').write(str(len(rows)))\nprint('dry ok')\n"
)
LIVE = (
    "import time\n"
    "for i in range(6):\n    print(f'line {i}', flush=True)\n    time.sleep(1)\n"
    "open('/data/outputs/result.txt', 'w').write('forty rows')\n"
)


def tagged_dataset(p: Running, tag: str) -> str:
    where = p.data_dir() / "weather.csv"
    where.write_text(DATA)
    where.chmod(0o644)
    meta = Metadata(name="Station temperatures", type="dataset", tags=[tag], description="daily")
    did = p.publisher.publish(meta, [str(where)], OPEN_DATA).id
    p.publisher.mock_attach(did, MOCK)
    return did


def test_catalogue_to_dry_run_to_live_logs_to_results(
    browser: Any, provider: Running, pages: list[Watched], tmp_path: Path
) -> None:
    did = tagged_dataset(provider, "ui-weather")
    assert provider.consumer.key is not None
    w = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path), pages)
    page = w.page

    w.goto("/ui/catalogue")
    page.fill("#tag", "ui-weather")
    page.click("#search")
    # a click returns once the next page is asked for, not once it has loaded
    page.wait_for_url("**tag=ui-weather**")
    links = page.locator("#assets a.asset")
    assert links.all_inner_texts() == ["Station temperatures"]
    links.first.click()
    assert page.inner_text("#did") == did
    assert "3 rows" in page.inner_text("#mock")
    assert "Outputs are not checked" in page.inner_text("#policy")

    page.fill("#rawcode", DRY)
    page.click("#dryrun")
    page.wait_for_url(f"{provider.url}/ui/dryruns/**")
    # the page follows the run (server-sent events) and shows its files once it has ended
    page.wait_for_selector("#results a.result", timeout=60_000)
    with page.expect_download() as download:
        page.click("#results a.result:text-is('rows.txt')")
    # the header and the three mock rows: the run read the mock data, not the real file
    assert Path(download.value.path()).read_text() == "4"

    info = provider.consumer.start(did, rawcode=LIVE)
    w.goto(f"/ui/jobs/{info.jobId}")
    # a line arrives while the job still runs: the results (shown once it ended) are not
    # on the page yet
    expect(page.locator("#log")).to_contain_text("line 1", timeout=30_000)
    assert page.locator("#results").count() == 0
    page.wait_for_selector("#results a.result", timeout=60_000)
    expect(page.locator("#log")).to_contain_text("line 5", timeout=30_000)
    with page.expect_download() as download:
        page.click("#results a.result:text-is('result.txt')")
    assert Path(download.value.path()).read_text() == "forty rows"
    assert page.inner_text("#receipt-check").startswith("Verified")
    w.clean()
    # an ended job's page, opened in another browser that did not watch it run, shows its
    # log too
    assert provider.consumer.key is not None
    other = cli_login(browser, provider, key_file(provider.consumer.key, tmp_path / "2"), pages)
    other.goto(f"/ui/jobs/{info.jobId}")
    expect(other.page.locator("#log")).to_contain_text("line 5", timeout=30_000)
    other.clean()
