"""The UI people use, in a real browser: `dagster dev` for this project, driven by headless Chromium.

One webserver and daemon on loopback (temporary DAGSTER_HOME and lake, a free port) serve the
whole module. A person opens the asset graph, presses "Materialize all" on the job
``materialize_lake``, watches the run succeed, opens an asset's checks and sees them passed, sees
an analytics chart on its asset page, and finds the schedule and sensors. Screenshots go to
``test-artifacts/browser/``. Chromium is Debian's package (installed here with apt-get when
missing); Playwright only drives it, it downloads no browser.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from movielake_dagster.settings import SAMPLE_DATA_DIR

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
STARTUP_SECONDS = 300  # the machine may be busy: generous waits, no timing assertions
RUN_SECONDS = 20 * 60
UI_MS = 120_000  # Playwright's wait for an element

# What the UI must list on the Automation page. The test also requires everything the code
# location reports, so a new schedule or sensor is covered without an edit here.
# >>> schedules and sensors added later: name them here when they must never disappear.
EXPECTED_AUTOMATION = {
    "daily_lake_update_schedule",
    "new_landed_files",
    "crawl_on_materialization",
    "lake_run_failure",
}
# <<<
CHECKED_ASSET = "access/fct_rating"  # key, integrity and reconciliation checks: the page to show
CHARTED_ASSET = "analytics/ratings_by_hour"


# -- Chromium --------------------------------------------------------------------------------------
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (CI runs as root on a fresh machine)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return str(CHROMIUM)


# -- dagster dev ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    # Processes started from a non-interactive shell may inherit SIGINT/SIGTERM as ignored; dagster
    # dev shuts its webserver, daemon and code servers down cleanly on SIGINT only if it sees it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(process: subprocess.Popen) -> None:
    """SIGINT for a clean shutdown, then SIGKILL to whatever is left of the process group."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # run workers and their Spark JVMs, if any survived
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def graphql(url: str, query: str, **variables) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        json.dumps({"query": query, "variables": variables}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`dagster dev` (webserver + daemon) for this project on a free loopback port; stopped after the module."""
    root = tmp_path_factory.mktemp("dagster-dev")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    env = dict(
        os.environ, DAGSTER_HOME=str(home), MOVIELAKE_LAKE=str(root / "lake"), MOVIELAKE_LANDING=str(SAMPLE_DATA_DIR)
    )
    log = (root / "dagster-dev.log").open("w")
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "--host", "127.0.0.1", "--port", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_signals,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"dagster dev exited; see {root / 'dagster-dev.log'}"
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"dagster dev did not answer in {STARTUP_SECONDS}s"
                time.sleep(2)
        yield url
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def page(ui):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport=VIEWPORT)
        tab.set_default_timeout(UI_MS)
        # The UI offers a newsletter dialog on a first visit from localhost; the browser says it was dismissed.
        tab.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        yield tab
        browser.close()


def shot(tab, name: str) -> None:
    tab.wait_for_timeout(1500)  # let the graph layout and fonts settle
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# -- the journey --------------------------------------------------------------------------------------
def lineage_url(ui: str, *expanded_groups: str) -> str:
    """The global asset graph with these groups opened (the others stay one box each)."""
    return f"{ui}/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in expanded_groups)


def test_the_asset_graph_shows_the_layers_as_groups(ui, page):
    page.goto(f"{ui}/asset-groups")
    for group in ("staging", "cleanse", "access", "analytics"):
        page.get_by_text(group, exact=True).first.wait_for()
    shot(page, "01-asset-graph-groups")


@pytest.fixture(scope="module")
def materialized(ui, page) -> str:
    """Press "Materialize all" on the job materialize_lake and wait for its run to end; the run id."""
    runs_query = "{ runsOrError { ... on Runs { results { runId jobName status } } } }"
    before = {r["runId"] for r in graphql(ui, runs_query)["runsOrError"]["results"]}
    page.goto(f"{ui}/locations/movielake/jobs/materialize_lake")
    page.locator("button", has_text="Materialize all").first.click()
    # Dagster asks to confirm when an upstream asset outside the job (the daily rating batch) was never built.
    confirm = page.get_by_role("button", name="Confirm")
    deadline = time.monotonic() + 120
    run_id = None
    while run_id is None:
        assert time.monotonic() < deadline, "no run was launched by Materialize all"
        if confirm.is_visible():
            confirm.click()
        runs = graphql(ui, runs_query)["runsOrError"]["results"]
        run_id = next(
            (r["runId"] for r in runs if r["runId"] not in before and r["jobName"] == "materialize_lake"), None
        )
        page.wait_for_timeout(1000)
    # While the run works, the browser waits on a blank page: a live run page re-renders its streaming
    # logs and would take a core from the run (and from the other tests) for minutes.
    page.goto("about:blank")
    status_query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    deadline = time.monotonic() + RUN_SECONDS
    while (status := graphql(ui, status_query, id=run_id)["runOrError"]["status"]) not in (
        "SUCCESS",
        "FAILURE",
        "CANCELED",
    ):
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {RUN_SECONDS}s"
        time.sleep(5)
    page.goto(f"{ui}/runs/{run_id}")
    page.get_by_text(status.capitalize(), exact=True).first.wait_for()  # the run page's status tag
    page.get_by_text("Loading run logs").wait_for(state="hidden")
    shot(page, "02-run")
    assert status == "SUCCESS", f"run {run_id} ended {status}; see {ui}/runs/{run_id}"
    return run_id


def test_materialize_all_from_the_ui_succeeds(ui, page, materialized):
    # one group opened at a time: with two, the graph zooms out so far that it draws no labels
    for group, assets in (("access", ("fct_rating", "dim_movie")), ("analytics", ("ratings_by_hour", "top_movies"))):
        page.goto(lineage_url(ui, group))
        for asset in assets:
            page.get_by_text(asset, exact=True).first.wait_for()
        shot(page, f"03-asset-graph-built-{group}")


def _checks_of(ui: str, asset: str) -> list[str]:
    query = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name } } } } } }"""
    node = graphql(ui, query, path=asset.split("/"))["assetNodeOrError"]
    return [c["name"] for c in node["assetChecksOrError"].get("checks", [])]


def test_an_assets_checks_are_shown_passed(ui, page, materialized):
    checks = _checks_of(ui, CHECKED_ASSET)
    page.goto(f"{ui}/assets/{CHECKED_ASSET}?view=checks")
    if not checks:  # the checks are declared in movielake_dagster/checks/; without any the tab says so
        page.get_by_text("No checks", exact=False).first.wait_for()
        shot(page, "04-checks")
        return
    for name in checks:
        page.get_by_text(name, exact=True).first.wait_for()
    page.get_by_text("Passed", exact=True).first.wait_for()  # the selected check's latest evaluation
    shot(page, "04-checks")
    statuses = page.locator("text=/^(Succeeded|Failed|Warning|Skipped|Errored|Not evaluated)$/").all_inner_texts()
    assert statuses.count("Succeeded") == len(checks), statuses


def test_an_analytics_asset_shows_its_chart(ui, page, materialized):
    page.goto(f"{ui}/assets/{CHARTED_ASSET}")
    page.locator("tr", has_text="chart").get_by_text("[Show Markdown]").first.click()
    chart = page.locator('img[src^="data:image/png;base64,"]').first
    chart.wait_for()
    assert chart.evaluate("(img) => img.naturalWidth") == 640
    shot(page, "05-analytics-chart")
    page.keyboard.press("Escape")


def test_the_schedule_and_sensors_are_listed(ui, page):
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { schedules { name } sensors { name } } } } }"
    (repository,) = graphql(ui, query)["repositoriesOrError"]["nodes"]
    names = {s["name"] for s in repository["schedules"] + repository["sensors"]}
    assert names >= EXPECTED_AUTOMATION
    page.goto(f"{ui}/automation")
    for name in sorted(names):
        page.get_by_text(name, exact=True).first.wait_for()
    shot(page, "06-automation")
