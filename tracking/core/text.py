"""Checks every free-text input goes through: trimmed, bounded, no control characters."""

from __future__ import annotations

import unicodedata

from tracking.core.errors import ErrorCode, ValidationError

_ALLOWED_IN_MULTILINE = {"\n", "\t", "\r"}
# Explicit bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI
# PDI): they reorder what follows them on screen, so a name can show something other than what
# it is ("Trojan Source"). The implicit marks LRM/RLM/ALM that right-to-left text may need stay.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that show nothing: Hangul fillers, the braille blank, the combining
# grapheme joiner. With whitespace and format characters (zero-width space, joiners, BOM, soft
# hyphen...) they make a name that reads as empty.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _is_blank(text: str) -> bool:
    """Nothing a person could read: only whitespace and invisible characters (or nothing)."""
    return all(
        ch.isspace() or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp") or ch in _BLANK_LOOKING
        for ch in text
    )


def _has_control_characters(text: str, *, multiline: bool) -> bool:
    """Control characters (C0, C1, DEL, surrogates, bidi embeddings/overrides/isolates); a
    one-line text also refuses the Unicode line and paragraph separators, which break a line as
    much as a newline does."""
    refused = ("Cc", "Cs") if multiline else ("Cc", "Cs", "Zl", "Zp")
    return any(
        (unicodedata.category(ch) in refused or ch in _BIDI_CONTROLS)
        and not (multiline and ch in _ALLOWED_IN_MULTILINE)
        for ch in text
    )


def _too_long(field: str, max_length: int) -> ValidationError:
    return ValidationError(
        ErrorCode.TOO_LONG, f"{field} is longer than {max_length} characters.", field=field
    )


def optional_name(text: str | None, *, field: str, max_length: int) -> str | None:
    """A one-line name, stripped; blank (whitespace or invisible characters only) becomes None."""
    if text is None or _is_blank(text):
        return None
    text = text.strip()
    if len(text) > max_length:
        raise _too_long(field, max_length)
    if _has_control_characters(text, multiline=False):
        raise ValidationError(
            ErrorCode.INVALID_INPUT, f"{field} contains control characters.", field=field
        )
    return text


def clean_name(text: str | None, *, field: str, max_length: int) -> str:
    """A required one-line name."""
    name = optional_name(text, field=field, max_length=max_length)
    if name is None:
        raise ValidationError(ErrorCode.REQUIRED, f"{field} is required.", field=field)
    return name


def clean_text(text: str | None, *, field: str, max_length: int) -> str | None:
    """Optional multi-line text such as a description; blank becomes None."""
    if text is None or _is_blank(text):
        return None
    text = text.strip()  # what is stored is what is measured, as for names
    if len(text) > max_length:
        raise _too_long(field, max_length)
    if _has_control_characters(text, multiline=True):
        raise ValidationError(
            ErrorCode.INVALID_INPUT, f"{field} contains control characters.", field=field
        )
    return text
