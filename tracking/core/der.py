"""DER read by hand where ``openssl x509`` prints what cryptography does not: names in RFC 2253
form (``-nameopt RFC2253``) and serial numbers, including zero and negative ones."""

from __future__ import annotations

from collections.abc import Iterator

from cryptography import x509

# OpenSSL's short names for the attribute types seen in practice; any other type is printed
# as its dotted OID with a hex dump of the value, as OpenSSL does for types it does not know.
_OPENSSL_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}

# ASN.1 string tag -> codec of its content (one byte per character for the 8-bit types).
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "latin-1",  # NumericString
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String: OpenSSL reads it as Latin-1
    0x16: "latin-1",  # IA5String
    0x1A: "latin-1",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def rfc2253(name: x509.Name) -> str:
    """``name`` as ``openssl x509 -nameopt RFC2253`` prints it.

    Walks the DER rather than ``Name.rfc4514_string()``: OpenSSL reverses every attribute (also
    inside a multi-valued RDN), escapes each non-ASCII UTF-8 byte as ``\\XX`` and dumps unknown
    types as ``#<DER hex>``, none of which the RFC 4514 rendering does.
    """
    ((_, rdns, _),) = der_elements(name.public_bytes())
    entries: list[tuple[int, str]] = []  # (RDN index, "type=value")
    for index, (_, rdn, _) in enumerate(der_elements(rdns)):
        for _, attribute, _ in der_elements(rdn):
            (_, oid, _), (tag, content, element) = der_elements(attribute)
            dotted = _oid_text(oid)
            short = _OPENSSL_SHORT_NAMES.get(dotted)
            value = _string_value(tag, content) if short else None
            if value is None:
                value = "#" + element.hex().upper()
            entries.append((index, f"{short or dotted}={value}"))
    entries.reverse()
    text = ""
    for position, (index, entry) in enumerate(entries):
        if position:
            text += "+" if index == entries[position - 1][0] else ","
        text += entry
    return text


def der_elements(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(tag, content, whole element) of each DER element in ``data`` (single-byte tags)."""
    position = 0
    while position < len(data):
        start, tag, length = position, data[position], data[position + 1]
        position += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        yield tag, data[position : position + length], data[start : position + length]
        position += length


def _oid_text(content: bytes) -> str:
    arcs, value = [], 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def _string_value(tag: int, content: bytes) -> str | None:
    """The escaped text of a string value; None for what OpenSSL dumps as hex instead."""
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return None
    try:
        raw = content if codec == "utf-8" else content.decode(codec).encode()
    except UnicodeDecodeError:
        return None
    text = ""
    for position, byte in enumerate(raw):
        char = chr(byte)
        if byte < 0x20 or byte >= 0x7F:
            text += f"\\{byte:02X}"
        elif char in ',+"\\<>;' or (
            (char in "# " and position == 0) or (char == " " and position == len(raw) - 1)
        ):
            text += "\\" + char
        else:
            text += char
    return text


def serial_text(tbs_certificate: bytes) -> str:
    """As ``openssl x509 -serial``: uppercase hex of the magnitude's bytes (0 -> "00").

    Read from the DER: ``cert.serial_number`` warns on the zero and negative serials that some
    certificates still carry, and those are shown, not rejected.
    """
    ((_, tbs, _),) = der_elements(tbs_certificate)
    value = int.from_bytes(serial_content(tbs), "big", signed=True)
    digits = f"{abs(value):X}"
    return ("-" if value < 0 else "") + digits.zfill(len(digits) + len(digits) % 2)


def serial_content(tbs: bytes) -> bytes:
    """The serial number INTEGER's content bytes in a TBSCertificate's content, which starts
    with an optional [0] version, then the serial."""
    return next(content for tag, content, _ in der_elements(tbs) if tag == 0x02)
