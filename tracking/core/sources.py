"""Parse and normalize what users type: an SSL Source (PEM or host) and a domain name.

Pure: no sockets, no DNS. Failures are ``ValidationError`` s carrying the codes and messages
of README's "Validation errors"; nothing here decides whether a host exists (``lalala.com`` parses).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

import idna
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from publicsuffixlist import PublicSuffixList

from tracking.core.certificates import load_pem_certificate
from tracking.core.errors import ErrorCode, ValidationError

MAX_INPUT_CHARS = 2048
DEFAULT_PORT = 443
MAX_NAME_CHARS = 253
MAX_LABEL_CHARS = 63

# RFC 3986 scheme. A "scheme" followed by a port (``datto.com:8443/x``) is really host:port.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_PORT_THEN_PATH = re.compile(r"(?:[0-9]+(?:[/?#].*)?)?", re.DOTALL)
_PORT = re.compile(r"[0-9]{1,5}")
_BRACKETED = re.compile(r"\[([^\]]*)\](?::(.*))?", re.DOTALL)
_HTTP_PREFIX = re.compile(r"https?://", re.IGNORECASE)
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


# --- SSL Source ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PemSource:
    pem: str  # the certificate alone, canonical PEM ("\n" line endings, trailing newline)
    certificate: x509.Certificate


# How a host's TLS handshake is reached: "tls" at once (``host[:port]``), or by a URI scheme,
# with its default port. A STARTTLS protocol is one more entry here and one opener in
# ``tracking.probes.openers``.
TLS_AT_ONCE = "tls"
SCHEMES: dict[str, int] = {"https": 443, "http": 443}
PROTOCOL_OF_SCHEME = {"http": "https"}  # an http:// address means its https:// site


@dataclass(frozen=True)
class HostSource:
    host: str  # lower-case A-labels without trailing dot, or an IP address (IPv6 unbracketed)
    port: int = DEFAULT_PORT
    protocol: str = TLS_AT_ONCE  # TLS_AT_ONCE or a scheme of SCHEMES

    @property
    def display(self) -> str:
        """The host as people read it: U-labels, ``:port`` unless 443, IPv6 in brackets then."""
        if ":" in self.host:
            return self.host if self.port == DEFAULT_PORT else f"[{self.host}]:{self.port}"
        shown = _to_unicode(self.host)
        return shown if self.port == DEFAULT_PORT else f"{shown}:{self.port}"


SslSource = PemSource | HostSource


def parse_ssl_source(text: str) -> SslSource:
    """A PEM certificate (it contains ``-----BEGIN``/``-----END``) or a host."""
    if "-----BEGIN" in text or "-----END" in text:
        certificate = load_pem_certificate(text)
        # Re-encoding drops text pasted around the block and normalizes wrapping and line
        # endings; the DER bytes are the ones the user gave.
        pem = certificate.public_bytes(Encoding.PEM).decode("ascii")
        return PemSource(pem=pem, certificate=certificate)
    return _parse_host(text)


def _parse_host(text: str) -> HostSource:
    if len(text) > MAX_INPUT_CHARS:
        raise _uri_error()
    rest = text.strip()
    if not rest or _has_invisible(rest):
        raise _uri_error()
    # Bare IPv6 first: "fe80::1" would otherwise look like the scheme "fe80".
    if (v6 := _ipv6(rest)) is not None:
        return HostSource(v6)
    protocol, default_port = TLS_AT_ONCE, DEFAULT_PORT
    scheme = _SCHEME.fullmatch(rest)
    if scheme and not _PORT_THEN_PATH.fullmatch(scheme[2]):
        # A URI, so the scheme decides: the reference's "htps:\\datto.com" lands here.
        name = scheme[1].lower()
        if name not in SCHEMES:
            raise ValidationError(ErrorCode.HTTP_WEB_REQUEST_ERROR, field="sslSource")
        if not scheme[2].startswith("//"):
            raise _uri_error()
        rest = scheme[2][2:]
        protocol, default_port = PROTOCOL_OF_SCHEME.get(name, name), SCHEMES[name]
    if "\\" in rest:
        raise _uri_error()
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:  # userinfo: never sent anywhere, and a classic spoofing trick
        raise _uri_error()
    try:
        host, port = _host_and_port(authority, default_port)
    except ValueError as exc:
        raise _uri_error() from exc
    return HostSource(host, port, protocol)


def _host_and_port(authority: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port``; ValueError otherwise."""
    if bracketed := _BRACKETED.fullmatch(authority):
        v6 = _ipv6(bracketed[1])
        if v6 is None:
            raise ValueError("not an IPv6 address in brackets")
        return v6, _port(bracketed[2], default_port)
    name, colon, port_text = authority.partition(":")
    host = _to_ascii(name)
    if _NUMBER_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        # A numeric last label (decimal, or 0x hex) is an IPv4 address or nothing (as in the
        # WHATWG URL standard), which also rules out "1.2.3", "256.0.0.1", "010.0.0.1",
        # "0x7f000001".
        host = str(ipaddress.IPv4Address(host))
    return host, _port(port_text if colon else None, default_port)


def _port(text: str | None, default: int = DEFAULT_PORT) -> int:
    if text is None:
        return default
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("bad port")
    return int(text)


def _ipv6(text: str) -> str | None:
    """The compressed address if ``text`` is an IPv6 address; a zone id is refused."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.scope_id is not None:
        raise _uri_error()
    return str(address)


def _uri_error() -> ValidationError:
    return ValidationError(ErrorCode.INVALID_URI_FORMAT, field="sslSource")


# --- Domain --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainName:
    ascii: str  # registrable domain (eTLD+1) as A-labels, e.g. "example.co.uk"
    unicode: str  # the same in U-labels, e.g. "bücher.de"
    is_wildcard: bool  # typed as "*.example.com": saved, but no details are retrieved
    public_suffix: str  # A-labels, e.g. "co.uk"


_DOMAIN_MESSAGES = {
    "empty": "Enter a domain name, such as example.com.",
    "too_long": "The domain name is too long.",
    "invalid": (
        "The domain name is not valid: use letters, digits and hyphens in dot-separated "
        "labels of at most 63 characters, such as example.com."
    ),
    "idn": "The domain name is not a valid internationalized domain name.",
    "ip": "Enter a domain name, not an IP address.",
    "tld": "The top-level domain must be 2 to 63 characters long and not all digits.",
    "suffix": (
        "Enter a registrable domain such as example.com or example.co.uk, "
        "not a top-level domain or public suffix."
    ),
}


def parse_domain(text: str) -> DomainName:
    """The registrable domain behind what was typed (``https://www.Example.co.uk:8080/x``)."""
    if len(text) > MAX_INPUT_CHARS:
        raise _domain_error("too_long")
    rest = text.strip()
    if not rest:
        raise _domain_error("empty")
    if _has_invisible(rest):
        raise _domain_error("invalid")
    if prefix := _HTTP_PREFIX.match(rest):
        rest = rest[prefix.end() :]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if (bracketed := _BRACKETED.fullmatch(authority)) or authority.count(":") > 1:
        address = bracketed[1] if bracketed else authority
        raise _domain_error("ip" if _is_ip(address) else "invalid")
    name, colon, port_text = authority.partition(":")
    if colon and not _is_port(port_text):
        raise _domain_error("invalid")
    is_wildcard = name.startswith("*.")
    name = name.removeprefix("*.") if is_wildcard else name.removeprefix(".")
    try:
        ascii_name = _to_ascii(name)
    except _BadName as exc:
        raise _domain_error(exc.reason) from exc
    tld = ascii_name.rsplit(".", 1)[-1]
    if _is_ip(ascii_name):
        raise _domain_error("ip")
    if "." not in ascii_name:
        raise _domain_error("suffix")
    if not 2 <= len(tld) <= MAX_LABEL_CHARS or _DIGITS.fullmatch(tld):
        raise _domain_error("tld")
    registrable: str | None = _psl().privatesuffix(ascii_name)
    if registrable is None:
        raise _domain_error("suffix")
    suffix: str = _psl().publicsuffix(registrable)
    return DomainName(
        ascii=registrable,
        unicode=_to_unicode(registrable),
        is_wildcard=is_wildcard,
        public_suffix=suffix,
    )


@cache
def _psl() -> Any:
    # ICANN section only: a registration is tracked for the domain a registrar sold, so
    # "foo.github.io" tracks "github.io", not a private-section suffix owner's sub-domain.
    # Unknown TLDs follow the PSL's default rule "*" (accept_unknown): "example.newtld" is
    # registrable, because the bundled list lags new delegations and test zones (".test")
    # must work; a TLD that does not exist simply fails the look-ups later.
    return PublicSuffixList(only_icann=True, accept_unknown=True)


def _domain_error(reason: str) -> ValidationError:
    return ValidationError(ErrorCode.INVALID_DOMAIN, _DOMAIN_MESSAGES[reason], field="domain")


def _is_port(text: str) -> bool:
    try:
        _port(text)
    except ValueError:
        return False
    return True


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- Names, shared -------------------------------------------------------------------------


class _BadName(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _has_invisible(text: str) -> bool:
    """Whitespace, control, format (bidi overrides, zero-width), unassigned or private chars."""
    return any(unicodedata.category(char)[0] in "CZ" for char in text)


def _to_ascii(name: str) -> str:
    """A host name in any case, U- or A-labels, optional trailing dot -> lower-case A-labels.

    UTS 46 mapping (non-transitional, STD3 rules: no "_", "*", "%"...) then IDNA 2008 per
    non-ASCII label. Plain ASCII labels only need LDH with no edge hyphen: real hosts such
    as "r3---sn-abc.googlevideo.com" break IDNA 2008's hyphen rule for positions 3-4.
    """
    if len(name) > MAX_INPUT_CHARS // 2:  # idna refuses over 1024; it is far too long anyway
        raise _BadName("too_long")
    try:
        mapped = idna.uts46_remap(name, std3_rules=True, transitional=False)
    except idna.IDNAError as exc:
        raise _BadName("invalid") from exc
    mapped = mapped.removesuffix(".")  # after mapping, so that "。" counts as a dot
    ascii_name = ".".join(_label_to_ascii(label) for label in mapped.split("."))
    if len(ascii_name) > MAX_NAME_CHARS:
        raise _BadName("too_long")
    return ascii_name


def _label_to_ascii(label: str) -> str:
    if label.isascii():
        if not _LDH_LABEL.fullmatch(label) or len(label) > MAX_LABEL_CHARS:
            raise _BadName("invalid")
        if label.startswith("xn--"):
            _ulabel(label)  # must decode to a valid, canonically encoded U-label
        return label
    try:
        encoded = idna.alabel(label).decode("ascii")
    except idna.IDNAError as exc:
        raise _BadName("idn") from exc
    if len(encoded) > MAX_LABEL_CHARS:
        raise _BadName("invalid")
    return encoded


def _ulabel(label: str) -> str:
    try:
        return idna.ulabel(label)
    except idna.IDNAError as exc:
        raise _BadName("idn") from exc


def _to_unicode(ascii_name: str) -> str:
    return ".".join(
        _ulabel(label) if label.startswith("xn--") else label for label in ascii_name.split(".")
    )


def unicode_name(ascii_name: str) -> str:
    """A stored A-label name as people read it (U-labels); unchanged if it can't be decoded."""
    try:
        return _to_unicode(ascii_name)
    except _BadName:
        return ascii_name
