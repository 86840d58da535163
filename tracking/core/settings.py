"""Configuration from ``DSTRACK_*`` environment variables (README: "Configuration")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_RDAP_BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/dstrack.sqlite3"
    data_dir: Path = Path("var")
    admin_token: str | None = None
    dns_nameservers: tuple[Nameserver, ...] = ()
    whois_server: tuple[str, int] | None = None
    rdap_bootstrap_url: str = DEFAULT_RDAP_BOOTSTRAP_URL
    allow_private_targets: bool = False
    probe_timeout_s: float = 10.0
    ca_bundle: Path | None = None
    # The port where a domain's certificate is looked for (443 on the internet).
    domain_tls_port: int = 443
    # Retrievals (forced updates, creations and edits that reach the network) per user.
    retrievals_per_10_min: int = 500
    # Origins whose browser front-ends may call the GraphQL API (CORS); none by default.
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DSTRACK_DATA_DIR") or "var")
        return cls(
            database_url=env.get("DSTRACK_DATABASE_URL")
            or f"sqlite:///{(data_dir / 'dstrack.sqlite3').as_posix()}",
            data_dir=data_dir,
            admin_token=env.get("DSTRACK_ADMIN_TOKEN") or None,
            dns_nameservers=parse_nameservers(env.get("DSTRACK_DNS_NAMESERVERS", "")),
            whois_server=parse_host_port(env["DSTRACK_WHOIS_SERVER"], default_port=43)
            if env.get("DSTRACK_WHOIS_SERVER")
            else None,
            rdap_bootstrap_url=env.get("DSTRACK_RDAP_BOOTSTRAP_URL") or DEFAULT_RDAP_BOOTSTRAP_URL,
            allow_private_targets=env.get("DSTRACK_ALLOW_PRIVATE_TARGETS", "") == "1",
            probe_timeout_s=float(env.get("DSTRACK_PROBE_TIMEOUT_S") or 10),
            ca_bundle=Path(env["DSTRACK_CA_BUNDLE"]) if env.get("DSTRACK_CA_BUNDLE") else None,
            domain_tls_port=int(env.get("DSTRACK_DOMAIN_TLS_PORT") or 443),
            retrievals_per_10_min=_positive(env, "DSTRACK_RETRIEVALS_PER_10_MIN", 500),
            cors_origins=parse_origins(env.get("DSTRACK_CORS_ORIGINS", "")),
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)


def parse_host_port(text: str, *, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:  # a bare IPv6 address or a name without a port
        host, port = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    return host, int(port) if port else default_port


def parse_nameservers(text: str) -> tuple[Nameserver, ...]:
    """``DSTRACK_DNS_NAMESERVERS``: comma-separated ``ip`` or ``ip:port``."""
    servers = []
    for item in text.split(","):
        if item.strip():
            host, port = parse_host_port(item, default_port=53)
            servers.append(Nameserver(host, port))
    return tuple(servers)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(text: str) -> tuple[str, ...]:
    """``DSTRACK_CORS_ORIGINS``: comma-separated ``scheme://host[:port]``, as browsers send them.

    Scheme and host are lowercased and a default port is dropped (``https://App.example.com:443``
    is ``https://app.example.com``); anything else than an origin - a path, ``*`` - is an error.
    """
    origins: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            parts = urlsplit(item)
            port = parts.port
        except ValueError as error:
            raise ValueError(f"DSTRACK_CORS_ORIGINS: {item!r} is not an origin ({error})") from None
        if (
            parts.scheme not in _DEFAULT_PORTS
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                f"DSTRACK_CORS_ORIGINS: {item!r} is not an origin like https://app.example.com"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        origin = f"{parts.scheme}://{host}"
        if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
            origin += f":{port}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)
