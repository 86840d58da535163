"""The servers of :mod:`tests.fakes.starttls_servers` where the client speaks first: XMPP,
LDAP and PostgreSQL.

* :class:`XmppServer` - RFC 6120 section 5: the client's stream header gets the server's, with
  ``<stream:features>`` listing ``<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>``;
  ``<starttls/>`` gets ``<proceed/>``, then TLS and the client's new stream. Without STARTTLS
  the features list SASL PLAIN only and ``<starttls/>`` gets ``<failure/>`` and the end.
* :class:`LdapServer` - RFC 4511 in BER: a StartTLS ExtendedRequest (OID 1.3.6.1.4.1.1466.20037)
  gets an ExtendedResponse with resultCode success (0) and the OID as responseName, then TLS;
  without STARTTLS it gets protocolError (2). Bind is accepted, a search returns no entry,
  Unbind ends the session; LDAPS is ``Behaviour.IMPLICIT_TLS``.
* :class:`PostgresServer` - a PostgreSQL server's first answer: an SSLRequest gets ``S`` then
  TLS (``N`` without STARTTLS), GSSENCRequest gets ``N``; any start-up message then gets a
  FATAL ErrorResponse, as this is no database (:mod:`tests.fakes.postgres_server` runs a real
  one). Useful for the hostile behaviours and the refusal.
"""

from __future__ import annotations

import re
import struct

import pytest

from tests.fakes.pki import _der, _der_content, _der_elements
from tests.fakes.starttls_servers import (
    HUGE_LINE_SIZE,
    LINE_LIMIT,
    StartTlsServer,
    Wire,
    scheme_fixture,
)

# -- XMPP -----------------------------------------------------------------------------------------

XMPP_TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
_STREAM_TO = re.compile(rb"""\bto=['"]([^'"]*)['"]""")


class XmppServer(StartTlsServer):
    """An XMPP server's side of a client stream up to ``<proceed/>`` (RFC 6120 section 5)."""

    protocol = "xmpp"
    host_name = "xmpp.test"
    client_speaks_first = True
    line_end = b"'>"

    def talk_prefix(self) -> bytes:
        return b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='"

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        del greet  # the client opens each stream, before and after TLS
        header = self._read_element(wire, b"<stream:stream")
        if header is None:
            return False
        domain = m.group(1).decode("utf-8", "replace") if (m := _STREAM_TO.search(header)) else ""
        starttls = self.offers_starttls and not wire.tls
        features = (
            f"<starttls xmlns='{XMPP_TLS_NS}'><required/></starttls>"
            if starttls
            else "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>PLAIN</mechanism></mechanisms>"
        )
        wire.send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' id='dstrack-test' "
            f"from='{domain or self.host_name}' version='1.0' xml:lang='en'>"
            f"<stream:features>{features}</stream:features>"
        )
        while (element := self._read_element(wire, b"<")) is not None:
            if b"</stream:stream" in element:
                wire.send("</stream:stream>")
                return False
            if b"<starttls" in element and starttls:
                wire.send(f"<proceed xmlns='{XMPP_TLS_NS}'/>")
                return True
            if b"<starttls" in element:
                wire.send(f"<failure xmlns='{XMPP_TLS_NS}'/></stream:stream>")
                return False
        return False

    @staticmethod
    def _read_element(wire: Wire, start: bytes) -> bytes | None:
        """The next tag starting with ``start`` (skipping an XML declaration), up to its '>'."""
        while True:
            head = wire.until(b">")
            if head is None:
                return None
            text = head.strip()
            if text.startswith(b"<?xml"):
                continue
            if text.startswith(b"<starttls") and not text.endswith(b"/>"):
                closing = wire.until(b"</starttls>")
                text = text + (closing or b"")
            wire.record.received.append(text.decode("utf-8", "replace"))
            if text.startswith(start) or text.startswith(b"</stream:stream"):
                return text


# -- LDAP -----------------------------------------------------------------------------------------

STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
NOTICE_OF_DISCONNECTION_OID = b"1.3.6.1.4.1.1466.20036"
# LDAP protocolOp tags (RFC 4511 section 4.2 ff.), [APPLICATION n]
BIND_REQUEST, BIND_RESPONSE = 0x60, 0x61
UNBIND_REQUEST = 0x42
SEARCH_REQUEST, SEARCH_DONE = 0x63, 0x65
EXTENDED_REQUEST, EXTENDED_RESPONSE = 0x77, 0x78
SUCCESS, OPERATIONS_ERROR, PROTOCOL_ERROR = 0, 1, 2


def ldap_message(message_id: int, op_tag: int, content: bytes) -> bytes:
    """An LDAPMessage: SEQUENCE { messageID INTEGER, protocolOp }."""
    size = (message_id.bit_length() + 8) // 8
    return _der(0x30, _der(0x02, message_id.to_bytes(size, "big")) + _der(op_tag, content))


def ldap_result(code: int, diagnostic: bytes = b"") -> bytes:
    """LDAPResult's components: resultCode ENUMERATED, matchedDN, diagnosticMessage."""
    return _der(0x0A, bytes([code])) + _der(0x04, b"") + _der(0x04, diagnostic)


def starttls_request(message_id: int = 1) -> bytes:
    """What a client sends: ExtendedRequest { requestName [0] the StartTLS OID }."""
    return ldap_message(message_id, EXTENDED_REQUEST, _der(0x80, STARTTLS_OID))


def starttls_response(message_id: int, code: int = SUCCESS, diagnostic: bytes = b"") -> bytes:
    """ExtendedResponse { LDAPResult, responseName [10] the StartTLS OID }."""
    content = ldap_result(code, diagnostic) + _der(0x8A, STARTTLS_OID)
    return ldap_message(message_id, EXTENDED_RESPONSE, content)


def read_ldap_message(wire: Wire) -> bytes | None:
    """One whole BER LDAPMessage (tag, length, content); None on EOF, a bad tag or a length
    past LINE_LIMIT."""
    head = wire.exactly(2)
    if head is None or head[0] != 0x30:
        return None
    size, length_bytes = head[1], b""
    if size & 0x80:
        long_form = wire.exactly(size & 0x7F) if 1 <= size & 0x7F <= 4 else None
        if long_form is None:
            return None
        size, length_bytes = int.from_bytes(long_form, "big"), long_form
    if size > LINE_LIMIT:
        return None
    content = wire.exactly(size)
    return None if content is None else head + length_bytes + content


class LdapServer(StartTlsServer):
    """LDAP up to the StartTLS extended operation (or LDAPS)."""

    protocol = "ldap"
    host_name = "ldap.test"
    client_speaks_first = True

    def talk_prefix(self) -> bytes:
        # An LDAPMessage announcing 2 GiB of content, which then never ends.
        return b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01\x78\x84\x7f\xff\xff\xf0"

    def huge_message(self) -> bytes:
        return starttls_response(1, SUCCESS, b"x" * HUGE_LINE_SIZE)

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        del greet  # the client speaks first
        while (message := read_ldap_message(wire)) is not None:
            try:
                message_id_der, op, *_ = _der_elements(_der_content(message))
                message_id = int.from_bytes(_der_content(message_id_der), "big", signed=True)
            except (IndexError, ValueError):
                return False
            tag, fields = op[0], _der_content(op)
            wire.record.received.append(f"{message_id} {tag:#04x} {fields.hex()}")
            if tag == UNBIND_REQUEST:
                return False
            if tag == BIND_REQUEST:
                wire.send(ldap_message(message_id, BIND_RESPONSE, ldap_result(SUCCESS)))
            elif tag == SEARCH_REQUEST:
                wire.send(ldap_message(message_id, SEARCH_DONE, ldap_result(SUCCESS)))
            elif tag == EXTENDED_REQUEST and _request_name(fields) == STARTTLS_OID:
                if wire.tls:
                    wire.send(starttls_response(message_id, OPERATIONS_ERROR, b"TLS already on"))
                elif self.offers_starttls:
                    wire.send(starttls_response(message_id))
                    return True
                else:
                    wire.send(
                        starttls_response(message_id, PROTOCOL_ERROR, b"StartTLS not supported")
                    )
            else:
                notice = ldap_result(PROTOCOL_ERROR, b"unsupported operation")
                notice += _der(0x8A, NOTICE_OF_DISCONNECTION_OID)
                wire.send(ldap_message(0, EXTENDED_RESPONSE, notice))
                return False
        return False


def _request_name(fields: bytes) -> bytes | None:
    elements = _der_elements(fields)
    if elements and elements[0][0] == 0x80:
        return _der_content(elements[0])
    return None


# -- PostgreSQL -----------------------------------------------------------------------------------

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104


def pg_error(message: str, code: str = "28000") -> bytes:
    """A FATAL ErrorResponse message."""
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def ssl_request() -> bytes:
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


class PostgresServer(StartTlsServer):
    """PostgreSQL's SSLRequest exchange, then a FATAL error for any start-up message."""

    protocol = "postgres"
    host_name = "postgres.test"
    client_speaks_first = True

    def talk_prefix(self) -> bytes:
        return b""  # neither 'S' nor 'N' nor a message: just bytes

    def huge_message(self) -> bytes:
        return pg_error("x" * HUGE_LINE_SIZE)

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        del greet  # the client speaks first
        while (head := wire.exactly(8)) is not None:
            length, code = struct.unpack("!II", head)
            if length == 8 and code == GSSENC_REQUEST_CODE:
                wire.record.received.append("GSSENCRequest")
                wire.send(b"N")
            elif length == 8 and code == SSL_REQUEST_CODE and not wire.tls:
                wire.record.received.append("SSLRequest")
                wire.send(b"S" if self.offers_starttls else b"N")
                if self.offers_starttls:
                    return True
            else:
                if not 8 <= length <= LINE_LIMIT or wire.exactly(length - 8) is None:
                    return False
                wire.record.received.append(f"StartupMessage protocol {code >> 16}.{code & 0xFFFF}")
                reason = "this test server accepts no login"
                if not wire.tls:
                    reason = "no pg_hba.conf entry for host, no encryption"
                wire.send(pg_error(reason))
                return False
        return False


# -- pytest fixtures ----------------------------------------------------------------------------

xmpp_server = pytest.fixture(scheme_fixture("xmpp"), name="xmpp_server")
ldap_server = pytest.fixture(scheme_fixture("ldap"), name="ldap_server")
ldaps_server = pytest.fixture(scheme_fixture("ldaps"), name="ldaps_server")
postgres_fake_server = pytest.fixture(scheme_fixture("postgres"), name="postgres_fake_server")
