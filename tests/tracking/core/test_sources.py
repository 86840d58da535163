from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes import pki
from tracking.core.errors import MESSAGES, ErrorCode, ValidationError
from tracking.core.sources import (
    MAX_INPUT_CHARS,
    DomainName,
    HostSource,
    PemSource,
    parse_domain,
    parse_ssl_source,
)

URI = ErrorCode.INVALID_URI_FORMAT
HTTP = ErrorCode.HTTP_WEB_REQUEST_ERROR

# --- SSL Source: hosts ---------------------------------------------------------------------

HOSTS = [
    # the reference's example of a source that parses (and fails later, at retrieval)
    ("lalala.com", "lalala.com", 443),
    ("datto.com", "datto.com", 443),
    ("  Datto.COM.  ", "datto.com", 443),
    ("\tdatto.com\r\n", "datto.com", 443),
    ("\u00a0datto.com\u3000", "datto.com", 443),
    ("datto.com:8443", "datto.com", 8443),
    ("datto.com:443", "datto.com", 443),
    ("datto.com:00443", "datto.com", 443),
    ("datto.com:1", "datto.com", 1),
    ("datto.com:65535", "datto.com", 65535),
    ("datto.com/path", "datto.com", 443),
    ("datto.com:8443/path?q=1#f", "datto.com", 8443),
    ("datto.com?q", "datto.com", 443),
    ("http://datto.com", "datto.com", 443),
    ("https://datto.com", "datto.com", 443),
    ("HTTPS://WWW.DATTO.COM/", "www.datto.com", 443),
    ("HtTp://datto.com:80/x", "datto.com", 80),
    ("https://datto.com:8443/a/b?c=d&e#f", "datto.com", 8443),
    ("https://datto.com./", "datto.com", 443),
    ("intranet", "intranet", 443),
    ("localhost:8443", "localhost", 8443),
    ("https:443", "https", 443),  # a "scheme" followed by a port is host:port
    ("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com", 443),
    ("a-b.c-d.example", "a-b.c-d.example", 443),
    ("123.example", "123.example", 443),
    ("a" * 63 + ".com", "a" * 63 + ".com", 443),
    (".".join(["a" * 63] * 3 + ["a" * 61]), ".".join(["a" * 63] * 3 + ["a" * 61]), 443),
    # internationalized names
    ("bücher.example", "xn--bcher-kva.example", 443),
    ("BÜCHER.example", "xn--bcher-kva.example", 443),
    ("xn--bcher-kva.example", "xn--bcher-kva.example", 443),
    ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example", 443),
    ("https://bücher.example:8443/straße", "xn--bcher-kva.example", 8443),
    ("straße.de", "xn--strae-oqa.de", 443),  # non-transitional: ß is kept
    ("пример.рф", "xn--e1afmkfd.xn--p1ai", 443),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah", 443),
    ("ＥＸＡＭＰＬＥ．ＣＯＭ", "example.com", 443),  # noqa: RUF001 - full-width, UTS 46 maps it
    ("a。b。example", "a.b.example", 443),  # ideographic full stops
    # IPv4
    ("1.2.3.4", "1.2.3.4", 443),
    ("127.0.0.1:8443", "127.0.0.1", 8443),
    ("https://10.0.0.1/x", "10.0.0.1", 443),
    ("1.2.3.4.", "1.2.3.4", 443),
    # IPv6
    ("::1", "::1", 443),
    ("fe80::1", "fe80::1", 443),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", 443),
    ("[2001:db8::1]", "2001:db8::1", 443),
    ("[2001:db8::1]:8443", "2001:db8::1", 8443),
    ("https://[2001:db8::1]:8443/path", "2001:db8::1", 8443),
    ("http://[::1]", "::1", 443),
    ("::ffff:1.2.3.4", "::ffff:102:304", 443),
]


@pytest.mark.parametrize(("text", "host", "port"), HOSTS)
def test_hosts_are_normalized(text: str, host: str, port: int) -> None:
    protocol = "https" if text.lower().startswith(("http://", "https://")) else "tls"
    assert parse_ssl_source(text) == HostSource(host=host, port=port, protocol=protocol)


@pytest.mark.parametrize(
    ("source", "display"),
    [
        (HostSource("datto.com"), "datto.com"),
        (HostSource("datto.com", 8443), "datto.com:8443"),
        (HostSource("xn--bcher-kva.example"), "bücher.example"),
        (HostSource("xn--bcher-kva.example", 80), "bücher.example:80"),
        (HostSource("1.2.3.4", 8443), "1.2.3.4:8443"),
        (HostSource("2001:db8::1"), "2001:db8::1"),
        (HostSource("2001:db8::1", 8443), "[2001:db8::1]:8443"),
    ],
)
def test_display(source: HostSource, display: str) -> None:
    assert source.display == display


HOST_ERRORS = [
    # the reference's examples
    ("\\datto.com", URI),
    ("htps:\\\\datto.com", HTTP),
    # schemes that are not http(s)
    ("ftp://datto.com", HTTP),
    ("htps://datto.com", HTTP),
    ("FTP://datto.com:21", HTTP),
    ("mailto:admin@datto.com", HTTP),
    ("file:///etc/passwd", HTTP),
    ("javascript:alert(1)", HTTP),
    # "datto.com" is a well-formed scheme; only digits after the colon make it a port
    ("datto.com:abc", HTTP),
    ("datto.com:8443:1", HTTP),
    ("datto.com:\u0664\u0664\u0663", HTTP),  # Arabic-Indic digits are not a port
    ("ldap://[::1]", HTTP),
    # blank
    ("", URI),
    ("   ", URI),
    ("\r\n\t", URI),
    # spaces, control and invisible characters inside
    ("datto .com", URI),
    ("https://datto.com/a b", URI),
    ("datto\x00.com", URI),
    ("datto.com\x00", URI),
    ("\x00", URI),
    ("datto\n.com", URI),
    ("datto\x7f.com", URI),
    ("datto\u200b.com", URI),  # zero-width space
    ("datto.com\u202e", URI),  # right-to-left override
    ("datto\u00ad.com", URI),  # soft hyphen
    ("datto\ue000.com", URI),  # private use
    # backslashes
    ("https:\\\\datto.com", URI),
    ("datto.com\\path", URI),
    ("https://datto.com\\@evil.example", URI),
    # http(s) without a host
    ("https://", URI),
    ("http:///path", URI),
    ("https:datto.com", URI),
    ("//datto.com", URI),
    ("https://:443", URI),
    # userinfo
    ("user@datto.com", URI),
    ("https://user:pw@datto.com/", URI),
    ("https://evil.example@datto.com", URI),
    # ports
    ("datto.com:0", URI),
    ("datto.com:65536", URI),
    ("datto.com:99999999999999999999", URI),
    ("datto.com:", URI),
    ("https://datto.com:/", URI),
    ("https://datto.com:abc", URI),
    ("https://datto.com:44x", URI),
    ("https://datto.com:-1", URI),
    # names
    ("a..b", URI),
    (".datto.com", URI),
    ("datto.com..", URI),
    (".", URI),
    ("-datto.com", URI),
    ("datto-.com", URI),
    ("a.-b.com", URI),
    ("a_b.datto.com", URI),
    ("*.datto.com", URI),
    ("dat%74o.com", URI),
    ("datto!.com", URI),
    ("<datto.com>", URI),
    ('"datto.com"', URI),
    ("a" * 64 + ".com", URI),
    (".".join(["a" * 63] * 4), URI),  # 255 characters
    # numeric last label: an IPv4 address or nothing
    ("1.2.3", URI),
    ("256.1.1.1", URI),
    ("01.2.3.4", URI),
    ("1.2.3.4.5", URI),
    ("example.123", URI),
    ("12345", URI),
    # IPv6
    ("[::1", URI),
    ("[datto.com]", URI),
    ("[1.2.3.4]", URI),
    ("[::1]:0", URI),
    ("[::1]x", URI),
    ("fe80::1%eth0", URI),
    ("[fe80::1%25eth0]", URI),
    ("https://2001:db8::1/", URI),  # unbracketed in a URL
    ("::1::2", URI),
    # internationalized names that are not valid
    ("💩.example", URI),
    ("xn--ls8h.example", URI),  # the same, as an A-label
    ("xn--.example", URI),
    ("xn--zz.example", URI),
    ("xn---bcher-kva.example", URI),  # non-canonical A-label
    ("xn--bcher-kva-.example", URI),
    ("\u0627\u0644a.example", URI),  # bidi rule
    ("\u0301a.example", URI),  # leading combining mark
    ("a" * 60 + "ü.example", URI),  # A-label over 63 characters
    ("\ufffd.example", URI),
    # too long
    ("a" * (MAX_INPUT_CHARS + 1), URI),
    ("https://datto.com/" + "a" * MAX_INPUT_CHARS, URI),
    ("a" * 10_000, URI),
    ("\x00" * 10_000, URI),
    (" " * 10_000, URI),
]


@pytest.mark.parametrize(("text", "code"), HOST_ERRORS)
def test_host_errors(text: str, code: ErrorCode) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ssl_source(text)
    assert caught.value.code == code
    assert caught.value.message == MESSAGES[code]
    assert caught.value.field == "sslSource"


def test_reference_messages_verbatim() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ssl_source("\\datto.com")
    assert caught.value.message == (
        "Please double-check your input and try again (Invalid URI Format)"
    )
    with pytest.raises(ValidationError) as caught:
        parse_ssl_source("htps:\\\\datto.com")
    assert caught.value.message == (
        "Please double check your input and try again (HttpWebRequest error)"
    )


# --- SSL Source: PEM -------------------------------------------------------------------------


def test_pem_is_decoded() -> None:
    leaf = pki.test_ca().leaf("x.test")
    source = parse_ssl_source(leaf.pem)
    assert source == PemSource(pem=leaf.pem, certificate=leaf.cert)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda pem: pem.replace("\n", "\r\n"),
        lambda pem: pem.replace("\n", "\r"),
        lambda pem: "\n\n  " + pem.rstrip("\n"),
        lambda pem: "Subject: x.test\nissuer: somebody\n" + pem + "\ntrailing words\n",
    ],
    ids=["crlf", "cr", "whitespace", "text-around"],
)
def test_pem_is_normalized(wrap: Callable[[str], str]) -> None:
    leaf = pki.test_ca().leaf("x.test")
    source = parse_ssl_source(wrap(leaf.pem))
    assert isinstance(source, PemSource)
    assert source.pem == leaf.pem
    assert source.pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert source.pem.endswith("-----END CERTIFICATE-----\n")
    assert "\r" not in source.pem
    assert source.certificate == leaf.cert


def _body_reversed(pem: str) -> str:
    begin, *body, end = pem.splitlines()
    return "\n".join([begin, *body[::-1], end])


PEM_ERRORS: dict[str, Callable[[pki.Chain], str]] = {
    "two certificates": lambda ca: ca.leaf("x.test").pem + ca.leaf("y.test").pem,
    "a chain": lambda ca: ca.leaf("x.test").pem + ca.intermediate.pem,
    "private key included": lambda ca: ca.leaf("x.test").pem + ca.leaf("x.test").key_pem.decode(),
    "a key alone": lambda ca: ca.leaf("x.test").key_pem.decode(),
    "garbage body": lambda ca: (
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    ),
    "short body": lambda ca: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "empty body": lambda ca: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    "body lines reversed": lambda ca: _body_reversed(ca.leaf("x.test").pem),
    "END missing": lambda ca: ca.leaf("x.test").pem.rstrip("\n").rsplit("\n", 1)[0],
    "BEGIN missing": lambda ca: ca.leaf("x.test").pem.split("\n", 1)[1],
    "BEGIN alone": lambda ca: "-----BEGIN CERTIFICATE-----",
    "END prefix alone": lambda ca: "-----END",
    "marker in a URL": lambda ca: "https://datto.com/-----BEGIN",
    "a CRL label": lambda ca: ca.leaf("x.test").pem.replace("CERTIFICATE", "X509 CRL"),
    "non-ASCII in body": lambda ca: ca.leaf("x.test").pem.replace("A", "\u00c4", 1),
    "huge": lambda ca: ca.leaf("x.test").pem + "\x00" * 100_000,
}


@pytest.mark.parametrize("case", PEM_ERRORS)
def test_pem_errors(case: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ssl_source(PEM_ERRORS[case](pki.test_ca()))
    assert caught.value.code == ErrorCode.INVALID_PEM
    assert caught.value.message == MESSAGES[ErrorCode.INVALID_PEM]
    assert caught.value.field == "sslSource"


# --- Domains ---------------------------------------------------------------------------------

DOMAINS = [
    ("datto.com", "datto.com", "datto.com", "com", False),
    (".datto.com", "datto.com", "datto.com", "com", False),
    ("datto.com.", "datto.com", "datto.com", "com", False),
    ("  DATTO.COM  ", "datto.com", "datto.com", "com", False),
    ("www.datto.com", "datto.com", "datto.com", "com", False),
    ("http://datto.com", "datto.com", "datto.com", "com", False),
    ("HTTPS://www.Datto.com/path?q=1#f", "datto.com", "datto.com", "com", False),
    ("datto.com/path", "datto.com", "datto.com", "com", False),
    ("datto.com:8080", "datto.com", "datto.com", "com", False),
    ("https://datto.com:8443/x", "datto.com", "datto.com", "com", False),
    ("a.b.example.co.uk", "example.co.uk", "example.co.uk", "co.uk", False),
    ("example.co.uk", "example.co.uk", "example.co.uk", "co.uk", False),
    ("www.com", "www.com", "www.com", "com", False),
    # ICANN section only: private-section suffixes are not registrable boundaries
    ("foo.github.io", "github.io", "github.io", "io", False),
    ("foo.blogspot.com", "blogspot.com", "blogspot.com", "com", False),
    # wildcard rules and exceptions of the list
    ("x.city.kawasaki.jp", "city.kawasaki.jp", "city.kawasaki.jp", "kawasaki.jp", False),
    ("www.ck", "www.ck", "www.ck", "ck", False),
    # wildcards are devices too
    ("*.datto.com", "datto.com", "datto.com", "com", True),
    ("*.api.datto.com", "datto.com", "datto.com", "com", True),
    ("https://*.datto.com/", "datto.com", "datto.com", "com", True),
    # internationalized
    ("bücher.de", "xn--bcher-kva.de", "bücher.de", "de", False),
    ("www.BÜCHER.de", "xn--bcher-kva.de", "bücher.de", "de", False),
    ("xn--bcher-kva.de", "xn--bcher-kva.de", "bücher.de", "de", False),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai", "пример.рф", "xn--p1ai", False),
    ("a.example.公司.cn", "example.xn--55qx5d.cn", "example.公司.cn", "xn--55qx5d.cn", False),
    # unknown TLDs follow the list's default rule "*"
    ("example.unknowntld", "example.unknowntld", "example.unknowntld", "unknowntld", False),
    ("www.example.test", "example.test", "example.test", "test", False),
]


@pytest.mark.parametrize(("text", "ascii", "unicode", "suffix", "wildcard"), DOMAINS)
def test_domains(text: str, ascii: str, unicode: str, suffix: str, wildcard: bool) -> None:
    assert parse_domain(text) == DomainName(
        ascii=ascii, unicode=unicode, is_wildcard=wildcard, public_suffix=suffix
    )


EMPTY = "Enter a domain name, such as example.com."
TOO_LONG = "The domain name is too long."
INVALID = (
    "The domain name is not valid: use letters, digits and hyphens in dot-separated "
    "labels of at most 63 characters, such as example.com."
)
IDN = "The domain name is not a valid internationalized domain name."
IP = "Enter a domain name, not an IP address."
TLD = "The top-level domain must be 2 to 63 characters long and not all digits."
SUFFIX = (
    "Enter a registrable domain such as example.com or example.co.uk, "
    "not a top-level domain or public suffix."
)

DOMAIN_ERRORS = [
    ("", EMPTY),
    ("  \t ", EMPTY),
    ("datto .com", INVALID),
    ("datto\x00.com", INVALID),
    ("datto.com\u202e", INVALID),
    ("datto_x.com", INVALID),
    ("datto!.com", INVALID),
    ("\\datto.com", INVALID),
    ("admin@datto.com", INVALID),
    ("ftp://datto.com", INVALID),
    ("a..datto.com", INVALID),
    ("-datto.com", INVALID),
    ("datto-.com", INVALID),
    ("datto.com..", INVALID),
    ("*", INVALID),
    ("*.", INVALID),
    ("a.*.datto.com", INVALID),
    ("datto.com:abc", INVALID),
    ("datto.com:0", INVALID),
    ("datto.com:", INVALID),
    ("[datto.com]", INVALID),
    ("a" * 64 + ".com", INVALID),
    (".".join(["a" * 63] * 4) + ".com", TOO_LONG),
    ("a" * (MAX_INPUT_CHARS + 1), TOO_LONG),
    ("a." * 5_000 + "com", TOO_LONG),
    ("ü" * 2_000 + ".com", TOO_LONG),
    ("💩.com", IDN),
    ("xn--ls8h.com", IDN),
    ("xn--zz.com", IDN),
    ("\u0627\u0644a.com", IDN),
    ("1.2.3.4", IP),
    ("http://10.0.0.1/", IP),
    ("1.2.3.4:80", IP),
    ("::1", IP),
    ("[2001:db8::1]", IP),
    ("[2001:db8::1]:443", IP),
    ("example.123", TLD),
    ("1.2.3", TLD),
    ("example.a", TLD),
    ("com", SUFFIX),
    ("co.uk", SUFFIX),
    ("co.uk.", SUFFIX),
    ("*.co.uk", SUFFIX),
    (".com", SUFFIX),
    ("localhost", SUFFIX),
    ("kawasaki.jp", SUFFIX),
    ("anything.kawasaki.jp", SUFFIX),  # "*.kawasaki.jp" is a public suffix
    ("公司.cn", SUFFIX),
]


@pytest.mark.parametrize(("text", "message"), DOMAIN_ERRORS)
def test_domain_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_domain(text)
    assert caught.value.code == ErrorCode.INVALID_DOMAIN
    assert caught.value.message == message
    assert caught.value.field == "domain"
