"""The STARTTLS openers of protocols where the client speaks first: XMPP, LDAP, PostgreSQL.

See :mod:`tracking.probes.openers` for the table and the text protocols.
"""

from __future__ import annotations

import struct
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.sax.saxutils import quoteattr

from tracking.probes.openers_wire import (
    MAX_ANSWER_BYTES,
    ExchangeFailed,
    Opener,
    StartTlsRefused,
    Wire,
)

# -- XMPP -----------------------------------------------------------------------------------------

_STREAMS = "{http://etherx.jabber.org/streams}"
_TLS = "{urn:ietf:params:xml:ns:xmpp-tls}"


class XmppOpener(Opener):
    """RFC 6120 section 5: our stream header (``to`` the host), the server's
    ``<stream:features>`` listing ``<starttls/>``, our ``<starttls/>`` answered by
    ``<proceed/>`` (``<failure/>`` or no such feature: refused).

    The server's XML is read with the standard library's pull parser; XMPP allows no DTD,
    comment or entity declaration (RFC 6120 11.1), so any ``<!`` ends the exchange."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        await wire.send(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0' "
            + f"to={quoteattr(server_name)}>".encode()
        )
        reader = _XmlReader(wire)
        features = await reader.element({f"{_STREAMS}features"})
        if features.find(f"{_TLS}starttls") is None:
            raise StartTlsRefused("the XMPP server does not offer STARTTLS")
        await wire.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        answer = await reader.element({f"{_TLS}proceed", f"{_TLS}failure"})
        if answer.tag != f"{_TLS}proceed":
            raise StartTlsRefused("the XMPP server answered <failure/> to <starttls/>")


class _XmlReader:
    """The server's stream, parsed as it arrives, up to a wanted (complete) element."""

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
        self._last = b""

    async def element(self, wanted: set[str]) -> Element:
        while True:
            for event in self._parser.read_events():
                element = event[-1]
                if not isinstance(element, Element):
                    continue
                if element.tag in wanted:
                    return element
                if element.tag == f"{_STREAMS}error":
                    raise ExchangeFailed("the XMPP server sent a stream error")
            chunk = await self._wire.some()
            if b"<!" in self._last + chunk:
                raise ExchangeFailed("the XMPP server sent a DTD, comment or declaration")
            self._last = chunk[-1:]
            try:
                self._parser.feed(chunk)
            except ParseError as exc:
                raise ExchangeFailed(f"the XMPP server sent malformed XML: {exc}") from exc


# -- LDAP -----------------------------------------------------------------------------------------

_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
# LDAPMessage { messageID 1, ExtendedRequest [APPLICATION 23] { requestName [0] the OID } }
_STARTTLS_REQUEST = bytes.fromhex("301d02010177188016") + _STARTTLS_OID
_EXTENDED_RESPONSE = 0x78  # [APPLICATION 24], constructed
_INTEGER, _ENUMERATED = 0x02, 0x0A


class LdapOpener(Opener):
    """RFC 4511 section 4.14: the StartTLS ExtendedRequest, answered by an ExtendedResponse
    whose resultCode is success (0); anything else (protocolError, unavailable, a Notice of
    Disconnection) is a refusal."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        await wire.send(_STARTTLS_REQUEST)
        message = await _ldap_message(wire)
        message_id, rest = _ber(message, _INTEGER)
        response, _ = _ber(rest, _EXTENDED_RESPONSE)
        result, _ = _ber(response, _ENUMERATED)
        if int.from_bytes(message_id, "big") != 1:
            raise StartTlsRefused("the LDAP server sent a notice of disconnection")
        if int.from_bytes(result, "big") != 0:
            raise StartTlsRefused(f"StartTLS answered resultCode {int.from_bytes(result, 'big')}")


async def _ldap_message(wire: Wire) -> bytes:
    """One LDAPMessage's content (a BER SEQUENCE), its length bounded."""
    tag, first = await wire.exactly(2)
    if tag != 0x30:
        raise ExchangeFailed(f"not an LDAP message (tag {tag:#04x})")
    size = first
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise ExchangeFailed("bad BER length in the LDAP answer")
        size = int.from_bytes(await wire.exactly(count), "big")
    if size > MAX_ANSWER_BYTES:
        raise ExchangeFailed(f"an LDAP answer of {size} bytes")
    return await wire.exactly(size)


def _ber(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """The content of the BER element with ``tag`` that ``data`` starts with, and the rest."""
    if len(data) < 2 or data[0] != tag:
        raise ExchangeFailed(f"unexpected LDAP answer (tag {data[:1].hex() or 'none'})")
    size, offset = data[1], 2
    if size & 0x80:
        count = size & 0x7F
        if not 1 <= count <= 4 or len(data) < 2 + count:
            raise ExchangeFailed("bad BER length in the LDAP answer")
        size, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    if len(data) < offset + size:
        raise ExchangeFailed("a truncated LDAP answer")
    return data[offset : offset + size], data[offset + size :]


# -- PostgreSQL -----------------------------------------------------------------------------------

_SSL_REQUEST = struct.pack("!II", 8, 80877103)


class PostgresOpener(Opener):
    """The frontend/backend protocol's SSLRequest, answered by one byte: ``S`` (TLS follows),
    ``N`` (no TLS: refused); an ErrorResponse (``E``) or anything else fails."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        await wire.send(_SSL_REQUEST)
        answer = await wire.exactly(1)
        if answer == b"N":
            raise StartTlsRefused("the PostgreSQL server does not accept TLS")
        if answer != b"S":
            raise ExchangeFailed(f"the PostgreSQL server answered {answer!r} to SSLRequest")
