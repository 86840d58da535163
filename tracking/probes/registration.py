"""Who holds a domain: RDAP first; WHOIS when the TLD has no RDAP service, RDAP failed, or RDAP
has no record of it.

The outcome is exactly one of found / not registered / failed. A failure is never reported as
"not registered": only registries' explicit answers are (a WHOIS "No match for", confirming an
RDAP 404 where the TLD has a WHOIS server; the RDAP 404 alone where it has none).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import ClassVar

from tracking.core.errors import ErrorCode
from tracking.core.registration import (
    LookupFailureKind,
    ParseError,
    RegistrationDetails,
    RegistryLookupError,
    ascii_domain,
    merge_details,
    parse_rdap_domain,
)
from tracking.core.settings import Settings
from tracking.core.whois_text import is_whois_not_found, parse_whois_text
from tracking.probes import rdap, whois
from tracking.probes.resolver import Resolver, resolver_for

RDAP_CONTENT_TYPE = "application/rdap+json"
WHOIS_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class RawAnswer:
    """One registry answer as received, for the RAW file: where from, and the body."""

    origin: str  # URL, or WHOIS server name
    content_type: str
    text: str


@dataclass(frozen=True)
class LookupFailure:
    source: str  # "RDAP" | "WHOIS"
    kind: str  # a LookupFailureKind value (NOT_FOUND: an RDAP 404 WHOIS was asked about)
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True)
class RegistrationFound:
    result: ClassVar[str] = "found"
    details: RegistrationDetails
    source: str
    answers: tuple[RawAnswer, ...]  # the registry's first, then the registrar's if asked
    notes: tuple[LookupFailure, ...] = ()  # e.g. why RDAP was not used

    @property
    def raw(self) -> str:
        return self.answers[0].text


@dataclass(frozen=True)
class RegistrationNotRegistered:
    result: ClassVar[str] = "not_registered"
    source: str
    answers: tuple[RawAnswer, ...] = ()
    notes: tuple[LookupFailure, ...] = ()


@dataclass(frozen=True)
class RegistrationFailed:
    result: ClassVar[str] = "failed"
    failures: tuple[LookupFailure, ...]
    answers: tuple[RawAnswer, ...] = ()  # answers that could not be used, if any

    @property
    def message(self) -> str:
        """E.g. ``RDAP: HTTP 429 Too Many Requests; WHOIS: timed out after 10 s``."""
        return "; ".join(str(f) for f in self.failures)

    @property
    def kind(self) -> str:
        """The kind of the last failure (the one that ended the look-up)."""
        return self.failures[-1].kind

    @property
    def code(self) -> ErrorCode:
        """PRIVATE_ADDRESS_REFUSED when the guard refused every server that could answer."""
        kinds = {f.kind for f in self.failures} - {LookupFailureKind.NOT_FOUND}
        if kinds == {LookupFailureKind.PRIVATE_ADDRESS}:
            return ErrorCode.PRIVATE_ADDRESS_REFUSED
        return ErrorCode.LOOKUP_FAILED


RegistrationOutcome = RegistrationFound | RegistrationNotRegistered | RegistrationFailed


async def lookup_registration(
    domain: str,
    settings: Settings,
    *,
    resolver: Resolver | None = None,
    whois_address_book: whois.AddressBook | None = None,
) -> RegistrationOutcome:
    """Registration details of a registrable domain (e.g. ``example.co.uk``, not ``www.…``).

    RDAP first. WHOIS is asked when the TLD has no RDAP service, when RDAP failed, and when
    RDAP has no record of the domain (404): "not registered" then needs WHOIS to say so too,
    and a WHOIS record wins (its details, ``source`` WHOIS). The RDAP 404 stands alone only
    for a TLD without a WHOIS server.

    ``resolver`` defaults to the probes' resolver for ``settings``; ``whois_address_book`` is a
    test seam (see :data:`tracking.probes.whois.AddressBook`).
    """
    resolver = resolver or resolver_for(settings)
    failures: list[LookupFailure] = []
    unusable: list[RawAnswer] = []
    rdap_404: RawAnswer | None = None

    try:
        outcome = await _via_rdap(domain, settings, resolver)
    except RegistryLookupError as exc:
        failures.append(LookupFailure("RDAP", exc.kind, exc.message))
    except _Unusable as exc:
        failures.append(exc.failure)
        unusable.append(exc.answer)
    else:
        if isinstance(outcome, RegistrationFound):
            return outcome
        if isinstance(outcome, rdap.RdapNotFound):
            rdap_404 = RawAnswer(outcome.url, RDAP_CONTENT_TYPE, outcome.text)
            failures.append(_no_rdap_record(domain))

    try:
        answer = await whois.query_whois(
            domain, settings, resolver=resolver, address_book=whois_address_book
        )
    except RegistryLookupError as exc:
        failure = LookupFailure("WHOIS", exc.kind, exc.message)
        if rdap_404 is not None and exc.kind == LookupFailureKind.NO_SERVER:
            # Nothing to confirm the RDAP 404 with: it stands.
            return RegistrationNotRegistered("RDAP", (rdap_404,), (*failures, failure))
        return RegistrationFailed((*failures, failure), _kept(unusable, rdap_404))
    return _from_whois(domain, answer, failures, unusable, rdap_404)


def _from_whois(
    domain: str,
    answer: whois.WhoisAnswer,
    failures: list[LookupFailure],
    unusable: list[RawAnswer],
    rdap_404: RawAnswer | None,
) -> RegistrationOutcome:
    """The outcome of a WHOIS answer; ``failures``, ``unusable`` and ``rdap_404`` say what
    RDAP gave (its 404 is kept beside WHOIS's answer for the RAW file)."""
    answers = (*_whois_answers(answer), *_kept([], rdap_404))
    if is_whois_not_found(answer.text):
        return RegistrationNotRegistered("WHOIS", answers, tuple(failures))
    try:
        details = parse_whois_text(domain, answer.text)
    except ParseError:
        failure = LookupFailure(
            "WHOIS",
            LookupFailureKind.INVALID_ANSWER,
            f"no registration data in the answer of {answer.server}",
        )
        kept = (*_kept(unusable, rdap_404), *_whois_answers(answer))
        return RegistrationFailed((*failures, failure), kept)
    if answer.registrar_text is not None:
        with suppress(ParseError):  # the registry's answer stands on its own
            details = merge_details(details, parse_whois_text(domain, answer.registrar_text))
    return RegistrationFound(details, "WHOIS", answers, tuple(failures))


def _no_rdap_record(domain: str) -> LookupFailure:
    return LookupFailure(
        "RDAP", LookupFailureKind.NOT_FOUND, f"no record of {ascii_domain(domain)} (HTTP 404)"
    )


def _kept(unusable: list[RawAnswer], rdap_404: RawAnswer | None) -> tuple[RawAnswer, ...]:
    return (*unusable, rdap_404) if rdap_404 is not None else tuple(unusable)


class _Unusable(Exception):
    """RDAP answered, but with nothing we can use (kept for the failure message and RAW)."""

    def __init__(self, failure: LookupFailure, answer: RawAnswer):
        super().__init__(str(failure))
        self.failure = failure
        self.answer = answer


async def _via_rdap(
    domain: str, settings: Settings, resolver: Resolver
) -> RegistrationFound | rdap.RdapNotFound | None:
    """The RDAP outcome: found, no record (404), or None when the TLD has no RDAP service."""
    async with rdap.RdapClient(settings, resolver) as client:
        result = await client.query(domain)
        if isinstance(result, rdap.RdapNoService):
            return None
        if isinstance(result, rdap.RdapNotFound):
            return result
        answer = RawAnswer(result.url, RDAP_CONTENT_TYPE, result.text)
        try:
            details = parse_rdap_domain(result.data)
        except ParseError as exc:
            failure = LookupFailure("RDAP", LookupFailureKind.INVALID_ANSWER, str(exc))
            raise _Unusable(failure, answer) from exc
        answers = [answer]
        related = await client.related(result)
        if related is not None:
            try:
                details = merge_details(details, parse_rdap_domain(related.data))
                answers.append(RawAnswer(related.url, RDAP_CONTENT_TYPE, related.text))
            except ParseError:
                pass  # the registry's answer stands on its own
        return RegistrationFound(details, "RDAP", tuple(answers))


def _whois_answers(answer: whois.WhoisAnswer) -> tuple[RawAnswer, ...]:
    answers = [RawAnswer(answer.server, WHOIS_CONTENT_TYPE, answer.text)]
    if answer.registrar_server is not None and answer.registrar_text is not None:
        answers.append(
            RawAnswer(answer.registrar_server, WHOIS_CONTENT_TYPE, answer.registrar_text)
        )
    return tuple(answers)
