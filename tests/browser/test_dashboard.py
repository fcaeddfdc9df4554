"""The dashboard in a real browser against a real stack: every page renders without a script
error, a job submitted from the form shows up and draws its curves, user-chosen names stay
text, and an API that requires keys gets one from the user first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import ADMIN_KEY
from tests.integration.stack import Stack
from tests.tiny_configs import TINY_CONFIGS

pytestmark = pytest.mark.integration

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'


def base_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.port}"


def wait(driver: WebDriver, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    """Until `condition` holds. A live page re-draws parts of itself as events arrive, so an
    element the condition looks at may go stale: that is "not yet", and it looks again."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, 0.1, ignored_exceptions=ignored).until(condition)


def shown(driver: WebDriver, css: str, timeout: float = 30) -> WebElement:
    element: WebElement = wait(
        driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout
    )
    return element


def click(driver: WebDriver, xpath: str) -> None:
    """Click what `xpath` finds once it can be clicked; a live page re-draws its header as
    events arrive, so an element found a moment ago may be gone: find it again."""

    def clicked(d: WebDriver) -> bool:
        try:
            d.find_element(By.XPATH, xpath).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait(driver, clicked)


def script_errors(driver: WebDriver) -> list[str]:
    """Uncaught errors, rejected promises and console.error since the last call. A refused
    request's own console line (source `network`: the 401 before the key prompt, a 404 from
    an endpoint this server lacks) is the page working as meant, not an error."""
    found = list(driver.execute_script("return (window.__errors || []).splice(0)"))
    get_log = getattr(driver, "get_log", None)  # Chrome's own log, where the driver has it
    try:
        entries = get_log("browser") if get_log else []
    except Exception:  # a driver without the endpoint: the collector suffices
        entries = []
    found += [
        e["message"] for e in entries if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    return found


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page, not only the window: the window grows to the page's height."""
    height = driver.execute_script(
        "window.scrollTo(0, 0); return document.documentElement.scrollHeight"
    )
    driver.set_window_size(1280, min(max(int(height) + 100, 900), 4000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(1280, 900)


def visit(driver: WebDriver, url: str, ready: str, shots: Path, name: str) -> WebElement:
    """Open a page, wait for what shows it rendered, screenshot it, and insist it threw
    nothing."""
    driver.get(url)
    element = shown(driver, ready)
    screenshot(driver, shots / f"{name}.png")
    assert script_errors(driver) == [], name
    return element


@pytest.fixture(scope="module")
def trained(stack: Stack) -> dict[str, Any]:
    """A succeeded GAN, registered under a name with an alias, plus a job whose name is
    markup."""
    hostile = stack.submit("value_iteration", TINY_CONFIGS["value_iteration"], name=HOSTILE_NAME)
    points = "x,y\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(50))
    uploaded = stack.client.post(
        "/v1/datasets",
        files={"file": ("points.csv", points.encode())},
        data={"kind": "samples", "name": "browser-points"},
    )
    assert uploaded.status_code == 201, uploaded.text
    gan = stack.run(
        "gan",
        TINY_CONFIGS["gan"],
        name="ring-gan",
        tags={"team": "vision", "baseline": ""},
        register_as={"name": "browser-gan", "aliases": ["production"]},
    )
    tabular = stack.wait_for(hostile["id"])
    return {"gan": gan, "tabular": tabular, "dataset": uploaded.json()}


def test_every_page_renders_without_script_errors(
    driver: WebDriver, stack: Stack, trained: dict[str, Any], screenshots: Path
) -> None:
    url = base_url(stack)
    gan = trained["gan"]
    row = visit(driver, f"{url}/#/jobs", f'tr[data-job="{gan["id"]}"]', screenshots, "jobs")
    assert "team=vision" in row.text and "succeeded" in row.text
    listed = driver.find_element(By.ID, "jobs-list").text
    assert HOSTILE_NAME in listed  # shown as the characters it is made of
    assert driver.execute_script("return window.__xss") is None

    visit(driver, f"{url}/#/jobs/{gan['id']}", "#charts svg.chart", screenshots, "job")
    points = driver.find_elements(By.CSS_SELECTOR, "#charts svg.chart")
    assert sum(int(p.get_attribute("data-points") or 0) for p in points) > 0

    for name, job, figure in (("tabular", trained["tabular"], "values"), ("gan", gan, "samples")):
        model = f"{url}/#/models/{job['model_id']}"
        visit(driver, model, f'figure[data-query="{figure}"] img', screenshots, f"model-{name}")
        # Every figure settles: a picture, or the server's reason for not drawing one.
        wait(
            driver,
            lambda d: all(
                f.find_elements(By.CSS_SELECTOR, "img, .error")
                for f in d.find_elements(By.CSS_SELECTOR, "figure[data-query]")
            ),
            60,
        )
        screenshot(driver, screenshots / f"model-{name}-figures.png")
        assert script_errors(driver) == []
    # The GAN's model is a registered version, so it cannot go: the page says why.
    driver.find_element(By.XPATH, "//div[@class='page-head']//button[text()='Delete']").click()
    wait(driver, ec.alert_is_present()).accept()
    refusal = shown(driver, ".page-head + div .error")
    assert "model_in_use" in refusal.text

    visit(driver, f"{url}/#/models", f'tr[data-model="{gan["model_id"]}"]', screenshots, "models")
    dataset = trained["dataset"]["id"]
    row = visit(
        driver, f"{url}/#/datasets", f'tr[data-dataset="{dataset}"]', screenshots, "datasets"
    )
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait(driver, ec.alert_is_present()).accept()
    gone = ec.invisibility_of_element_located((By.CSS_SELECTOR, f'[data-dataset="{dataset}"]'))
    wait(driver, gone)
    assert stack.client.get(f"/v1/datasets/{dataset}").status_code == 404
    visit(driver, f"{url}/#/registry", '[data-name="browser-gan"]', screenshots, "registry")
    visit(driver, f"{url}/#/submit", "#config-fields .field", screenshots, "submit")

    driver.set_window_size(420, 900)  # a phone
    try:
        driver.get(f"{url}/#/jobs")
        shown(driver, f'tr[data-job="{gan["id"]}"]')
        driver.save_screenshot(str(screenshots / "jobs-narrow.png"))
    finally:
        driver.set_window_size(1280, 900)


def test_a_job_submitted_from_the_form_runs_and_draws_its_curves(
    driver: WebDriver, stack: Stack, screenshots: Path
) -> None:
    url = base_url(stack)
    visit(driver, f"{url}/#/submit", "#config-fields .field", screenshots, "submit-form")
    Select(driver.find_element(By.ID, "algorithm")).select_by_value("value_iteration")
    discount = shown(driver, "#config-discount")
    form = driver.find_element(By.ID, "submit-form")
    form.find_element(By.NAME, "name").send_keys("from-the-form")
    form.find_element(By.NAME, "tags").send_keys("suite=browser")
    Select(driver.find_element(By.ID, "config-sweeps")).select_by_visible_text("jacobi")
    checkpoints = driver.find_element(By.ID, "config-checkpoint_interval")
    checkpoints.clear()
    checkpoints.send_keys("5")
    discount.clear()
    discount.send_keys("2")  # more than 1: the server says so, beside the field
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = shown(driver, '.field[data-field="config.discount"] .field-error')
    assert "1" in error.text
    screenshot(driver, screenshots / "submit-422.png")

    discount.clear()
    discount.send_keys("0.9")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: "#/jobs/" in d.current_url)
    job_id = driver.current_url.rsplit("/", 1)[1]
    wait(
        driver,
        lambda d: any(
            int(c.get_attribute("data-points") or 0) > 1
            for c in d.find_elements(By.CSS_SELECTOR, "#charts svg.chart")
        ),
    )
    shown(driver, '.page-head [data-status="succeeded"]')
    shown(driver, '.page-head a[href^="#/models/"]')  # the job, refreshed when it ended
    wait(driver, lambda d: "INFO" in d.find_element(By.ID, "logs").text)
    screenshot(driver, screenshots / "submitted-job.png")
    assert stack.job(job_id)["config"]["sweeps"] == "jacobi"
    assert stack.job(job_id)["tags"] == {"suite": "browser"}

    # Another value_iteration run (the fixture's) overlaid on the curves.
    driver.find_element(By.CSS_SELECTOR, "details.compare summary").click()
    shown(driver, "details.compare input[type=checkbox]").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".legend .swatch")) == 2)
    delta = shown(driver, '[data-metric="dp/delta"] svg')
    assert len(delta.find_elements(By.CSS_SELECTOR, "polyline, circle")) == 2
    screenshot(driver, screenshots / "compared-job.png")

    driver.get(f"{url}/#/jobs")
    row = shown(driver, f'tr[data-job="{job_id}"]')
    assert "from-the-form" in row.text and "suite=browser" in row.text
    assert script_errors(driver) == []


def test_an_api_that_requires_keys_gets_one_from_the_user(
    driver: WebDriver, secured: Stack, screenshots: Path
) -> None:
    made = secured.client.post(
        "/v1/keys",
        json={"tenant": "browser", "scopes": ["read", "train", "query"]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    driver.get(f"{base_url(secured)}/#/jobs")
    field = shown(driver, "#key-dialog[open] #api-key")
    driver.save_screenshot(str(screenshots / "key-prompt.png"))

    field.send_keys("crk_wrong_key\n")
    wait(driver, lambda d: "not valid" in d.find_element(By.ID, "key-reason").text)
    field.send_keys(key + "\n")
    shown(driver, "#jobs-list")
    wait(driver, lambda d: "tenant browser" in d.find_element(By.ID, "caller").text)
    assert driver.execute_script("return sessionStorage.getItem('crucible.apiKey')") == key
    assert driver.get_cookies() == []

    headers = {"Authorization": f"Bearer {key}"}
    spec = {"algorithm": "value_iteration", "config": TINY_CONFIGS["value_iteration"]}
    job = secured.client.post("/v1/jobs", json={**spec, "name": "keyed"}, headers=headers)
    assert job.status_code == 202, job.text
    shown(driver, f'tr[data-job="{job.json()["id"]}"]')  # the list refreshes by itself
    screenshot(driver, screenshots / "keyed-jobs.png")
    assert script_errors(driver) == []


def test_a_running_job_shows_its_progress_live_cancels_resumes_and_clones(
    driver: WebDriver, stack: Stack, screenshots: Path
) -> None:
    long = {**TINY_CONFIGS["dqn"], "total_steps": 200_000, "eval_interval": 20_000}
    job = stack.submit("dqn", long, name="long-dqn", tags={"suite": "browser"})
    driver.get(f"{base_url(stack)}/#/jobs/{job['id']}")
    shown(driver, '.page-head [data-status="running"]')
    wait(
        driver,
        lambda d: (
            not d.find_element(By.CSS_SELECTOR, ".card .progress-label").text.startswith("0 ")
        ),
    )
    screenshot(driver, screenshots / "running-job.png")
    head = "//div[@class='page-head']//button[text()='{}']"
    click(driver, head.format("Cancel"))
    shown(driver, '.page-head [data-status="cancelled"]')
    screenshot(driver, screenshots / "cancelled-job.png")
    assert stack.job(job["id"])["status"] == "cancelled"

    click(driver, head.format("Resume"))  # from its checkpoint
    shown(driver, '.page-head [data-status="running"]')
    assert stack.job(job["id"])["attempt"] == 2
    click(driver, head.format("Cancel"))
    shown(driver, '.page-head [data-status="cancelled"]')

    click(driver, head.format("Clone"))
    wait(driver, lambda d: "#/jobs/" in d.current_url and job["id"] not in d.current_url)
    clone_id = driver.current_url.rsplit("/", 1)[-1]
    clone = stack.job(clone_id)
    assert clone["seed"] == job["seed"] + 1 and clone["config"] == stack.job(job["id"])["config"]
    assert stack.client.post(f"/v1/jobs/{clone_id}/cancel").status_code == 202

    driver.get(f"{base_url(stack)}/#/jobs/{job['id']}")
    shown(driver, '.page-head [data-status="cancelled"]')
    click(driver, head.format("Delete"))
    wait(driver, ec.alert_is_present()).accept()
    wait(driver, lambda d: d.current_url.endswith("#/jobs"))
    assert stack.client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert script_errors(driver) == []
