"""Take docs/dashboard.png: the dashboard at 1280x800 over realistic sample data.

    .venv/bin/python scripts/dashboard_screenshot.py [OUTPUT.png]

Everything runs on this machine: a fresh SQLite database, the tests' local DNS, TLS, RDAP and
WHOIS servers standing in for the customers' hosts and registries, the real app on a loopback
port, and Debian's Chromium (/usr/bin/chromium) driven by Playwright.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from api.app import create_app  # noqa: E402
from models.db import create_engine, migrate  # noqa: E402
from tests.api.dashboard_support import DAY, Api, LiveServer, launch_chromium  # noqa: E402
from tests.fakes import pki  # noqa: E402
from tests.fakes.dns_server import DnsServer  # noqa: E402
from tests.fakes.rdap_server import FakeRdapServer, RdapFault  # noqa: E402
from tests.fakes.tls_server import FakeTlsServer, ServedCertificate, served  # noqa: E402
from tests.fakes.whois_server import FakeWhoisServer, WhoisFault  # noqa: E402
from tracking.alerts import sweep  # noqa: E402
from tracking.core import clock  # noqa: E402
from tracking.core.settings import Settings  # noqa: E402
from tracking.wiring import build_services  # noqa: E402

TOKEN = secrets.token_urlsafe(24)  # of a throwaway database
NOW = dt.datetime.now(dt.UTC)
ORGANIZATIONS = {
    "Northwind Traders": "CUSTOMER",
    "Contoso Dental": "CUSTOMER",
    "Fabrikam Legal": "CUSTOMER",
    "Tailspin Toys": "CUSTOMER",
    "Litware Hosting": "VENDOR",
}
# host: (organization, days left, how it is served)
HOSTS = {
    "portal.northwindtraders.com": ("Northwind Traders", 2, "good"),
    "mail.contoso.com": ("Contoso Dental", -4, "good"),
    "vpn.fabrikam.com": ("Fabrikam Legal", 9, "self-signed"),
    "www.tailspintoys.com": ("Tailspin Toys", 23, "good"),
    "shop.northwindtraders.com": ("Northwind Traders", 41, "wrong host"),
    "intranet.contoso.com": ("Contoso Dental", 67, "good"),
    "api.tailspintoys.com": ("Tailspin Toys", 88, "good"),
    "remote.fabrikam.com": ("Fabrikam Legal", 120, "good"),
    "cloud.litwareinc.com": ("Litware Hosting", 160, "good"),
}
# domain: (organization, days left, whether its registry look-up fails)
DOMAINS = {
    "northwindtraders.com": ("Northwind Traders", 33, False),
    "contoso.com": ("Contoso Dental", 75, False),
    "tailspintoys.com": ("Tailspin Toys", 140, False),
    "fabrikam.com": ("Fabrikam Legal", 6, False),
    "litwareinc.com": ("Litware Hosting", 4, True),
}
# More certificates, as PEM uploads, so the chart has a shape.
PEM_SPREAD = [12, 15, 19, 27, 30, 36, 44, 47, 52, 58, 63, 71, 79, 95, 101, 108, 115, 131, 150]


def _served(host: str, days: int, how: str) -> ServedCertificate:
    ca = pki.test_ca()
    not_after = NOW + days * DAY + DAY / 2
    not_before = not_after - 90 * DAY
    if how == "self-signed":
        lone = pki.issue(pki.name(host), dns_names=[host], key_slot=4, not_before=not_before)
        return served(lone)
    name = f"other.{host}" if how == "wrong host" else host
    return served(ca.leaf(name, not_before=not_before, days=90), ca.intermediate)


@contextmanager
def _world() -> Iterator[tuple[DnsServer, FakeTlsServer, FakeRdapServer, FakeWhoisServer]]:
    zone: dict[str, dict[str, Any]] = {}
    for domain in DOMAINS:
        zone[f"{domain}."] = {
            "SOA": f"ns1.{domain}. hostmaster.{domain}. 1 3600 600 86400 60",
            "NS": f"ns1.{domain}.",
            "A": "127.0.0.1",
        }
    for host in HOSTS:
        zone[f"{host}."] = {"A": "127.0.0.1"}
    certificates = {host: _served(host, days, how) for host, (_, days, how) in HOSTS.items()}
    with ExitStack() as stack:
        dns = stack.enter_context(DnsServer(zone))
        tls = stack.enter_context(FakeTlsServer(certificates))
        rdap = stack.enter_context(FakeRdapServer())
        whois = stack.enter_context(FakeWhoisServer())
        yield dns, tls, rdap, whois


def _populate(api: Api, tls_port: int, rdap: FakeRdapServer, whois: FakeWhoisServer) -> None:
    orgs = {name: api.organization(name, kind) for name, kind in ORGANIZATIONS.items()}
    for host, (org, _, _) in HOSTS.items():
        api.device(orgs[org], "SSL_CERTIFICATE", name=host, sslSource=f"{host}:{tls_port}")
    names = list(ORGANIZATIONS)[:4]
    for i, days in enumerate(PEM_SPREAD):
        org = names[i % len(names)]
        api.certificate(orgs[org], f"srv{i + 1:02d}.{org.split()[0].lower()}.example", days)
    domains = {}
    for domain, (org, _, fails) in DOMAINS.items():
        if fails:  # created while tracking is on: the look-up fails, and says why
            rdap.set_fault(domain, RdapFault.SERVER_ERROR)
            whois.set_fault(domain, WhoisFault.EMPTY)
            domains[domain] = api.device(
                orgs[org], "DOMAIN", domain=domain, createSslCertificate=False
            )
    # Registration details entered by hand (no registry is asked while tracking is off).
    api.ok("mutation { setTrackingEnabled(enabled: false) { enabled } }")
    for domain, (org, left, _) in DOMAINS.items():
        device = domains.get(domain) or api.device(
            orgs[org], "DOMAIN", domain=domain, createSslCertificate=False
        )
        expires = (NOW + left * DAY + DAY / 2).isoformat()
        api.payload(
            "mutation($id: ID!, $input: UpdateDeviceInput!) { updateDevice(id: $id, "
            "input: $input) { device { id } errors { code message } } }",
            id=device["id"],
            input={"expiresAt": expires, "registrar": "Example Registrar, Inc."},
        )
    api.ok("mutation { setTrackingEnabled(enabled: true) { enabled } }")


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="dstrack-screenshot-") as tmp, _world() as world:
        dns, tls, rdap, whois = world
        url = f"sqlite:///{Path(tmp) / 'dstrack.sqlite3'}"
        migrate(url)
        settings = Settings(
            database_url=url,
            data_dir=Path(tmp) / "data",
            admin_token=TOKEN,
            dns_nameservers=(dns.nameserver,),
            whois_server=whois.address,
            rdap_bootstrap_url=rdap.bootstrap_url,
            allow_private_targets=True,
            probe_timeout_s=2.0,
            domain_tls_port=tls.address[1],
        )
        engine = create_engine(url)
        services = build_services(settings, engine)
        services.roots_override = [pki.test_ca().root.cert]
        with LiveServer(create_app(services=services)) as server:
            api = Api(server.origin, TOKEN)
            _populate(api, tls.address[1], rdap, whois)
            api.close()
            sweep(engine, now=clock.now())  # the expiry alerts the sensor would raise
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(server.origin + "/")
                page.get_by_test_id("token-input").fill(TOKEN)
                page.get_by_test_id("token-submit").click()
                expect(page.get_by_test_id("status")).to_contain_text("Showing", timeout=20_000)
                expect(page.get_by_test_id("expiry-chart").locator("rect")).to_have_count(26)
                expect(page.get_by_test_id("ack-button").first).to_be_visible()
                page.evaluate("document.activeElement.blur()")
                page.screenshot(path=str(output))
                browser.close()
        engine.dispose()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png")
