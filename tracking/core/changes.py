"""What an update changed: one ``Change`` per field that differs, as people read it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """A field whose value differs from the last audit.

    ``field`` is the stable name subscribers match on (``fingerprint_sha256``, ``trusted``,
    ``registrar``...); ``label``, ``old`` and ``new`` are the texts an Activity note shows.
    """

    field: str
    label: str
    old: str | None
    new: str | None


def describe_changes(changes: Iterable[Change]) -> str:
    """``Label: old → new; ...`` for an Activity note."""
    return "; ".join(f"{c.label}: {c.old or '(none)'} → {c.new or '(none)'}" for c in changes)


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")
