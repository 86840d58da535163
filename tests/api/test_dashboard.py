"""The dashboard at ``/`` in a real Chromium: token form, devices soonest first, filters, what a
restricted user sees, verdicts, the chart, open alerts, and that nothing leaves the origin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from api.app import create_app
from models.db import create_engine, migrate
from tests.api.dashboard_support import (  # noqa: F401 (fixture)
    TIMEOUT_MS,
    Api,
    LiveServer,
    browser_fixture,
    needs_chromium,
)
from tests.api.expiry_support import CREATE_LEVEL, CREATE_USER
from tests.conftest import ADMIN_TOKEN, World
from tests.fakes.rdap_server import RdapFault
from tests.fakes.tls_server import GOOD, SELF_SIGNED, WRONG_HOST
from tests.fakes.whois_server import WhoisFault
from tracking.core.settings import Settings
from tracking.refresh.services import Services
from tracking.wiring import build_services

pytestmark = needs_chromium
expect.set_options(timeout=TIMEOUT_MS)

ROWS = "[data-testid=expiring-table] tbody tr[data-device-id]"


@pytest.fixture
def live(services: Services) -> Iterator[LiveServer]:
    with LiveServer(create_app(services=services)) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[Api]:
    api = Api(live.origin, ADMIN_TOKEN)
    yield api
    api.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with every request and console error it made."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # console errors a test provokes

    def open(self, path: str = "/") -> None:
        self.page.goto(self.origin + path)

    def sign_in(self, token: str = ADMIN_TOKEN) -> None:
        self.page.get_by_test_id("token-input").fill(token)
        self.page.get_by_test_id("token-submit").click()
        expect(self.page.get_by_test_id("expiring-table")).to_be_visible()
        expect(self.page.get_by_test_id("status")).to_contain_text("Showing")

    def ids(self) -> list[str]:
        return self.page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.deviceId)")

    def days_left(self) -> list[str]:
        cells = self.page.locator(f"{ROWS} [data-testid=days-left]")
        return [text.strip() for text in cells.all_inner_texts()]

    def choose(self, testid: str, label: str) -> None:
        status = self.page.get_by_test_id("status")
        self.page.get_by_test_id(testid).select_option(label=label)
        expect(status).to_contain_text("Showing")

    def session_token(self) -> str | None:
        token: str | None = self.page.evaluate("sessionStorage.getItem('dstrack.apiToken')")
        return token


def _problem(kind: str, text: str) -> bool:
    """A console message that is a problem: every error but the 401 a wrong token gets."""
    return kind == "error" and "status of 401 (Unauthorized)" not in text


@pytest.fixture
def tab(browser: Browser, live: LiveServer) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    opened = Tab(page, live.origin)

    def record(request: Request) -> None:
        opened.requests.append(request.url)

    page.on("request", record)
    page.on("console", lambda m: _problem(m.type, m.text) and opened.problems.append(m.text))
    page.on("pageerror", lambda error: opened.problems.append(str(error)))
    yield opened
    context.close()
    problems = [p for p in opened.problems if not any(e in p for e in opened.expected)]
    assert problems == [], problems  # no script error, no CSP violation


# The token ---------------------------------------------------------------------------------


def test_without_a_valid_token_only_the_token_form_shows(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    device = admin.certificate(acme, "shop.acme.example", 12)
    page = tab.page
    tab.open()

    expect(page.get_by_test_id("token-input")).to_be_visible()
    expect(page.get_by_text("The dashboard shows nothing until you sign in")).to_be_visible()
    for hidden in ("expiring-table", "org-filter", "window-filter", "expiry-chart", "alerts-list"):
        expect(page.get_by_test_id(hidden)).to_be_hidden()
    expect(page.locator(ROWS)).to_have_count(0)

    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("token-message")).to_have_text("Enter your API token.")
    page.get_by_test_id("token-input").fill("not-a-token")
    page.get_by_test_id("token-submit").click()
    message = page.get_by_role("alert").filter(has_text="was not accepted")
    expect(message).to_contain_text("This API token was not accepted")
    expect(page.get_by_test_id("token-input")).to_be_focused()
    expect(page.get_by_test_id("expiring-table")).to_be_hidden()
    assert tab.session_token() is None

    tab.sign_in()
    assert tab.ids() == [device]
    expect(page.get_by_test_id("token-message")).to_have_text("")
    expect(page.get_by_test_id("token-input")).to_be_hidden()
    assert tab.session_token() == ADMIN_TOKEN
    expect(page.get_by_text("Signed in as admin")).to_be_visible()

    # The token is asked for once: a reload keeps it for this tab, signing out forgets it.
    page.reload()
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.get_by_test_id("token-input")).to_be_hidden()
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("token-input")).to_be_focused()
    expect(page.locator(ROWS)).to_have_count(0)
    assert tab.session_token() is None


def test_a_token_revoked_meanwhile_goes_back_to_the_form(tab: Tab, admin: Api) -> None:
    tab.open()
    tab.page.evaluate("sessionStorage.setItem('dstrack.apiToken', 'revoked-token')")
    tab.page.reload()
    expect(tab.page.get_by_test_id("token-message")).to_have_text(
        "Your session has ended. Sign in again with your API token."
    )
    expect(tab.page.get_by_test_id("expiring-table")).to_be_hidden()
    assert tab.session_token() is None


def test_a_server_out_of_reach_is_said_plainly(tab: Tab) -> None:
    tab.open()
    tab.expected.append("net::ERR_FAILED")
    tab.page.route("**/graphql", lambda route: route.abort())
    tab.page.get_by_test_id("token-input").fill(ADMIN_TOKEN)
    tab.page.get_by_test_id("token-submit").click()
    expect(tab.page.get_by_test_id("token-message")).to_have_text(
        "The dstrack server could not be reached. Check the connection and try again."
    )
    expect(tab.page.get_by_test_id("expiring-table")).to_be_hidden()
    assert tab.session_token() is None


# The devices -------------------------------------------------------------------------------


def test_devices_are_listed_soonest_expiry_first(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    globex = admin.organization("Globex")
    later = admin.certificate(acme, "later.acme.example", 40)
    no_expiry = str(admin.device(acme, "STANDARD", name="A router")["id"])
    soon = admin.certificate(globex, "soon.globex.example", 3)
    expired = admin.certificate(acme, "expired.acme.example", -3)
    middle = admin.certificate(globex, "middle.globex.example", 10)

    tab.open()
    tab.sign_in()

    assert tab.ids() == [expired, soon, middle, later, no_expiry]
    assert tab.days_left() == ["-3 expired", "3", "10", "40", "—"]
    expired_row = tab.page.locator(f"tr[data-device-id='{expired}']")
    expect(expired_row.get_by_role("rowheader")).to_have_text("expired.acme.example")
    expect(expired_row).to_contain_text("SSL certificate")
    expect(expired_row).to_contain_text("Acme")
    expect(tab.page.locator(f"tr[data-device-id='{soon}']")).to_contain_text("Globex")
    expect(tab.page.locator(f"tr[data-device-id='{no_expiry}']")).to_contain_text("Other")
    expect(tab.page.get_by_test_id("status")).to_have_text(
        "Showing 5 of 5 active devices, soonest expiry first."
    )
    # Table semantics for screen readers: column headers and a row header per device.
    headers = tab.page.locator("[data-testid=expiring-table] thead th")
    assert headers.evaluate_all("hs => hs.map(h => h.scope)") == ["col"] * 8
    assert tab.page.locator(f"{ROWS} th[scope=row]").count() == 5
    assert tab.page.evaluate(LOW_CONTRAST) == []


# Every visible element with text of its own: its colour against the first opaque background
# behind it, as WCAG computes the contrast ratio (at least 4.5:1 for normal text).
LOW_CONTRAST = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = (c) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const behind = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const e of document.querySelectorAll("body *")) {
    if (!(e instanceof HTMLElement) || !e.offsetParent) continue;
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(behind(e))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) low.push(`${e.tagName}.${e.className}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def test_show_more_continues_the_list(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    soonest = admin.certificate(acme, "soonest", 1)
    others = [str(admin.device(acme, "STANDARD", name=f"d{i:03d}")["id"]) for i in range(100)]
    tab.open()
    tab.sign_in()
    expect(tab.page.get_by_test_id("status")).to_have_text(
        "Showing 100 of 101 active devices, soonest expiry first."
    )
    assert tab.ids() == [soonest, *others[:99]]

    tab.page.get_by_test_id("load-more").click()

    expect(tab.page.get_by_test_id("status")).to_have_text(
        "Showing 101 of 101 active devices, soonest expiry first."
    )
    assert tab.ids() == [soonest, *others]
    expect(tab.page.get_by_test_id("load-more")).to_be_hidden()
    expect(tab.page.locator(f"tr[data-device-id='{others[-1]}'] th")).to_be_focused()


def test_filters_by_organization_and_expiry_window(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    globex = admin.organization("Globex")
    a_expired = admin.certificate(acme, "a-expired", -1)
    a5 = admin.certificate(acme, "a5", 5)
    a20 = admin.certificate(acme, "a20", 20)
    a60 = admin.certificate(acme, "a60", 60)
    a200 = admin.certificate(acme, "a200", 200)
    g6 = admin.certificate(globex, "g6", 6)
    g80 = admin.certificate(globex, "g80", 80)
    admin.device(globex, "STANDARD", name="no expiry")
    tab.open()
    tab.sign_in()
    page = tab.page
    assert len(tab.ids()) == 8

    tab.choose("window-filter", "7 days")
    assert tab.ids() == [a_expired, a5, g6]
    expect(page.get_by_test_id("status")).to_have_text(
        "Showing 3 of 3 active devices expiring within 7 days (or expired), soonest expiry first."
    )
    tab.choose("window-filter", "30 days")
    assert tab.ids() == [a_expired, a5, g6, a20]
    tab.choose("window-filter", "90 days")
    assert tab.ids() == [a_expired, a5, g6, a20, a60, g80]

    tab.choose("org-filter", "Globex")
    assert tab.ids() == [g6, g80]
    assert re.search(r"\?organization=.+&within=90$", page.url)
    tab.choose("window-filter", "Any time")
    assert len(tab.ids()) == 3
    tab.choose("org-filter", "Acme")
    assert tab.ids() == [a_expired, a5, a20, a60, a200]
    # The chart follows the organization: Acme has 3 expiries in the next 26 weeks.
    expect(page.get_by_test_id("expiry-chart")).to_contain_text("3 devices of Acme expire")

    # The filters are in the address: a reload (the token is kept) shows the same list.
    tab.choose("window-filter", "30 days")
    page.reload()
    expect(page.get_by_test_id("status")).to_contain_text("of Acme expiring within 30 days")
    assert tab.ids() == [a_expired, a5, a20]
    expect(page.get_by_test_id("org-filter")).to_have_value(re.compile(".+"))
    expect(page.get_by_test_id("window-filter")).to_have_value("30")


def test_a_restricted_user_sees_only_their_organizations(tab: Tab, admin: Api) -> None:
    customer = admin.organization("Customer Co", "CUSTOMER")
    other_customer = admin.organization("Another Customer", "CUSTOMER")
    vendor = admin.organization("Vendor Co", "VENDOR")
    seen = admin.certificate(customer, "seen.customer.example", 30)
    also_seen = admin.certificate(other_customer, "also-seen.example", 31)
    admin.certificate(vendor, "hidden.vendor.example", 1)
    level = admin.payload(
        CREATE_LEVEL,
        input={
            "name": "Customers only",
            "crmAccess": True,
            "viewOrganizationTypes": ["CUSTOMER"],
            "canAddDevices": False,
            "canEditDevices": False,
            "canDeleteDevices": False,
        },
    )["securityLevel"]["id"]
    token = admin.payload(CREATE_USER, name="carol", level=level)["token"]

    tab.open()
    tab.sign_in(token)

    assert tab.ids() == [seen, also_seen]
    options = tab.page.get_by_test_id("org-filter").locator("option").all_inner_texts()
    assert options == ["All organizations", "Another Customer", "Customer Co"]
    expect(tab.page.get_by_text("Signed in as carol (Customers only)")).to_be_visible()
    assert sum(_forecast_table(tab)) == 2  # the vendor's device is not counted


def test_trust_and_host_name_verdicts_and_the_last_update_error(
    tab: Tab, admin: Api, world: World
) -> None:
    acme = admin.organization("Acme")
    good = str(admin.device(acme, "SSL_CERTIFICATE", sslSource=world.host(GOOD))["id"])
    self_signed = str(
        admin.device(acme, "SSL_CERTIFICATE", sslSource=world.host(SELF_SIGNED))["id"]
    )
    wrong_host = str(admin.device(acme, "SSL_CERTIFICATE", sslSource=world.host(WRONG_HOST))["id"])
    world.add_domain("google.com")
    world.rdap.set_fault("google.com", RdapFault.SERVER_ERROR)
    world.whois.set_fault("google.com", WhoisFault.EMPTY)
    failing = admin.device(acme, "DOMAIN", domain="google.com", createSslCertificate=False)
    assert failing["lastUpdateError"].startswith("Registration look-up failed"), failing

    tab.open()
    tab.sign_in()
    rows = {device: tab.page.locator(f"tr[data-device-id='{device}']") for device in tab.ids()}

    expect(rows[good].locator("td").nth(4)).to_have_text("✓ Trusted")
    expect(rows[good].locator("td").nth(5)).to_have_text("✓ Matches")
    expect(rows[self_signed].locator("td").nth(4)).to_contain_text("✗ Not trusted")
    expect(rows[wrong_host].locator("td").nth(4)).to_have_text("✓ Trusted")
    expect(rows[wrong_host].locator("td").nth(5)).to_have_text("✗ Mismatch")
    domain_row = rows[failing["id"]]
    expect(domain_row).to_contain_text("Domain")
    expect(domain_row.locator("td").nth(6)).to_have_text(failing["lastUpdateError"])


def _forecast_table(tab: Tab) -> list[int]:
    """The counts of the chart's text alternative (a table in a closed <details>)."""
    cells = tab.page.locator("#chart-table tbody td")
    expect(cells).to_have_count(26)
    return [int(text) for text in cells.evaluate_all("cells => cells.map(c => c.textContent)")]


def test_the_chart_counts_expiries_per_week_with_a_table_alternative(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    for days in (0, 1, 8, 8, 100, 400):
        admin.certificate(acme, f"in-{days}", days)
    tab.open()
    tab.sign_in()
    chart = tab.page.get_by_test_id("expiry-chart")

    expect(chart.locator("svg rect.bar")).to_have_count(26)
    counts = _forecast_table(tab)
    assert len(counts) == 26
    assert sum(counts) == 5  # the one in 400 days is past the 26 weeks
    assert counts.count(0) >= 26 - 4
    expect(chart.locator("figcaption")).to_contain_text("5 devices expire in the next 26 weeks")
    chart.get_by_text("The same as a table").click()
    expect(tab.page.locator("#chart-table")).to_be_visible()


# Alerts ------------------------------------------------------------------------------------


OPEN_ALERTS = """{ alerts(filter: {state: OPEN}) { totalCount edges { node { id state } } } }"""
ALERT_STATE = """query($id: ID!) { node(id: $id) { ... on Alert { state } } }"""


def test_acknowledging_an_open_alert(browser: Browser, settings: Settings, tmp_path: Path) -> None:
    # `dstrack alerts run` works on a migrated database: this test makes its own.
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    migrate(url)
    engine = create_engine(url)
    services = build_services(replace(settings, database_url=url), engine)
    with LiveServer(create_app(services=services)) as server:
        admin = Api(server.origin, ADMIN_TOKEN)
        acme = admin.organization("Acme")
        admin.certificate(acme, "renew-me.acme.example", 4)
        sweep = subprocess.run(
            [str(Path(sys.executable).with_name("dstrack")), "alerts", "run"],
            env={**os.environ, "DSTRACK_DATABASE_URL": url, "DSTRACK_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert sweep.returncode == 0, sweep.stderr
        assert re.match(r"raised [1-9]", sweep.stdout.strip().splitlines()[-1]), sweep.stdout
        (alert,) = [e["node"] for e in admin.ok(OPEN_ALERTS)["alerts"]["edges"]]

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(server.origin + "/")
            page.get_by_test_id("token-input").fill(ADMIN_TOKEN)
            page.get_by_test_id("token-submit").click()
            items = page.get_by_test_id("alerts-list").locator("li")
            expect(items).to_have_count(1)
            expect(items).to_contain_text("renew-me.acme.example")
            expect(items).to_contain_text("expires in")
            page.get_by_test_id("ack-button").click()
            expect(items).to_have_count(0)
            expect(page.get_by_test_id("alerts-message")).to_have_text("No open alert.")
            expect(page.get_by_test_id("status")).to_contain_text("Alert acknowledged")
        finally:
            context.close()
        assert admin.ok(OPEN_ALERTS)["alerts"]["totalCount"] == 0
        assert admin.ok(ALERT_STATE, id=alert["id"])["node"] == {"state": "ACKNOWLEDGED"}
        admin.close()
    engine.dispose()


# Staying on the origin ---------------------------------------------------------------------


def test_no_request_leaves_the_origin_and_no_cookie_is_set(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    admin.certificate(acme, "one", 5)
    response = httpx.get(tab.origin + "/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "<script>" not in response.text

    tab.open()
    tab.sign_in()
    tab.choose("window-filter", "30 days")
    tab.choose("org-filter", "Acme")
    tab.page.reload()
    expect(tab.page.locator(ROWS)).to_have_count(1)

    assert tab.requests, "no request was recorded"
    assert all(url.startswith(tab.origin + "/") for url in tab.requests), tab.requests
    assert any(url == tab.origin + "/graphql" for url in tab.requests)
    assert tab.page.context.cookies() == []
    assert tab.page.evaluate("document.cookie") == ""
    assert tab.session_token() == ADMIN_TOKEN
    assert tab.page.evaluate("localStorage.length") == 0


# Small screens and keyboards ---------------------------------------------------------------


def test_on_a_phone_each_device_reads_as_a_card(
    browser: Browser, live: LiveServer, admin: Api
) -> None:
    acme = admin.organization("Acme")
    admin.certificate(acme, "a-rather-long-host-name.customer-portal.acme.example", 5)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(live.origin + "/")
        page.get_by_test_id("token-input").fill(ADMIN_TOKEN)
        page.get_by_test_id("token-submit").click()
        expect(page.locator(ROWS)).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width  # nothing to scroll sideways
        label = page.locator(f"{ROWS} [data-testid=days-left]").evaluate(
            "cell => getComputedStyle(cell, '::before').content"
        )
        assert label == '"Days left"'
    finally:
        context.close()


def test_the_keyboard_reaches_everything_in_reading_order(tab: Tab, admin: Api) -> None:
    acme = admin.organization("Acme")
    admin.certificate(acme, "one", 5)
    tab.open()
    page = tab.page
    page.keyboard.press("Tab")
    expect(page.get_by_text("Skip to the devices")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("api-link")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("token-input")).to_be_focused()
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.get_by_role("heading", name="What expires soon")).to_be_focused()
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(
            page.evaluate("document.activeElement.dataset.testid || document.activeElement.tagName")
        )
    assert order[:4] == ["org-filter", "window-filter", "refresh", "SUMMARY"], order
