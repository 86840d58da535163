"""The per-device gauges: what each one shows of a device row, and its exposition lines.

Each gauge is declared once (name, help, labels, value) and used two ways: as a
``prometheus_client`` metric family (``family``; what ``generate_latest`` renders), and as
text lines written straight from the rows (``DeviceLines``; the same bytes, verified by the
tests, at a fraction of the cost - prometheus-client builds a Sample and a label dict per line
and escapes every label again for each metric, which alone takes several seconds for 100,000
devices). Label values are the device's; ``device_id`` is the GraphQL ID.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.utils import floatToGoString

from models import DeviceCategory
from tracking.core.ids import encode_id
from tracking.metrics.readers import UPDATED_CATEGORIES, DeviceRow

CERTIFICATE_LABELS = ("device_id", "organization", "name", "host", "port", "common_name", "issuer")
DEVICE_LABELS = ("device_id", "organization", "name")
CATEGORY_LABELS = ("device_id", "organization", "name", "category")
DOMAIN_LABELS = ("device_id", "organization", "name", "domain", "registrar")

# Every label a device's metrics may carry, in the order of ``label_values``.
LABEL_NAMES = (
    "device_id",
    "organization",
    "name",
    "category",
    "host",
    "port",
    "common_name",
    "issuer",
    "domain",
    "registrar",
)


def label_values(row: DeviceRow) -> tuple[str, ...]:
    """The device's labels in ``LABEL_NAMES`` order; absent values are empty, as Prometheus
    treats a missing label."""
    return (
        encode_id("Device", row.id),
        row.organization,
        row.name,
        row.category,
        row.ssl_host or "",
        "" if row.ssl_port is None else str(row.ssl_port),
        row.common_name or "",
        row.issued_by or "",
        row.domain or "",
        row.registrar or "",
    )


def escape(value: str) -> str:
    """A label value as the text format writes it (as prometheus-client escapes it)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def escaped_values(row: DeviceRow) -> tuple[str, ...]:
    """``label_values`` escaped for the text format (most rows need no escaping at all)."""
    values = label_values(row)
    joined = "".join(values)
    if "\\" in joined or '"' in joined or "\n" in joined:
        return tuple(escape(v) for v in values)
    return values


_SMALL: dict[float, str] = {0: "0.0", 1: "1.0"}
# prometheus-client leaves it unannotated.
float_to_go_string: Callable[[float], str] = floatToGoString


def go_float(value: float) -> str:
    """``prometheus_client.utils.floatToGoString``, with a short path for the whole numbers
    (Unix times, 0 and 1) that the samples are: the same text, without a float's repr."""
    if (text := _SMALL.get(value)) is not None:
        return text
    if type(value) is int and 0 < value < 10**15:
        digits = str(value)
        if len(digits) <= 6:
            return digits + ".0"
        mantissa = f"{digits[0]}.{digits[1:]}".rstrip("0.")
        return f"{mantissa}e+{len(digits) - 1:02d}"
    return float_to_go_string(value)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


SSL = DeviceCategory.SSL_CERTIFICATE.value
DOMAIN = DeviceCategory.DOMAIN.value


@dataclass(frozen=True)
class DeviceGauge:
    name: str
    documentation: str
    labels: tuple[str, ...]
    categories: tuple[str, ...]  # the devices that may have a sample
    value: Callable[[DeviceRow], float | None]  # None: the device has no sample of this gauge

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=list(self.labels))


DEVICE_GAUGES: tuple[DeviceGauge, ...] = (
    DeviceGauge(
        "dstrack_certificate_not_after_timestamp_seconds",
        "When the certificate of an SSL Certificate device expires (notAfter), in Unix time.",
        CERTIFICATE_LABELS,
        (SSL,),
        lambda row: row.valid_until,
    ),
    DeviceGauge(
        "dstrack_certificate_not_before_timestamp_seconds",
        "When the certificate of an SSL Certificate device became valid (notBefore), in Unix time.",
        CERTIFICATE_LABELS,
        (SSL,),
        lambda row: row.valid_from,
    ),
    DeviceGauge(
        "dstrack_certificate_chain_trusted",
        "1 when the certificate's chain leads to a trusted root, else 0.",
        DEVICE_LABELS,
        (SSL,),
        lambda row: _flag(row.trusted),
    ),
    DeviceGauge(
        "dstrack_certificate_hostname_matches",
        "1 when the certificate is valid for its host name, else 0 (no sample for a PEM).",
        DEVICE_LABELS,
        (SSL,),
        lambda row: _flag(row.hostname_matches),
    ),
    DeviceGauge(
        "dstrack_domain_expiry_timestamp_seconds",
        "When the registration of a Domain device expires, in Unix time.",
        DOMAIN_LABELS,
        (DOMAIN,),
        lambda row: row.domain_expires,
    ),
    DeviceGauge(
        "dstrack_device_last_update_timestamp_seconds",
        "When the device's details were last retrieved successfully, in Unix time.",
        CATEGORY_LABELS,
        UPDATED_CATEGORIES,
        lambda row: row.last_updated,
    ),
    DeviceGauge(
        "dstrack_device_update_failing",
        "1 when the device's last update failed (its previous details stay), else 0.",
        CATEGORY_LABELS,
        UPDATED_CATEGORIES,
        lambda row: int(row.consecutive_failures > 0),
    ),
)


def add_samples(families: Sequence[GaugeMetricFamily], rows: Sequence[DeviceRow]) -> None:
    """Add the rows' samples to the families of ``DEVICE_GAUGES`` (in that order)."""
    for row in rows:
        labels = dict(zip(LABEL_NAMES, label_values(row), strict=True))
        for gauge, family in zip(DEVICE_GAUGES, families, strict=True):
            value = gauge.value(row) if row.category in gauge.categories else None
            if value is not None:
                family.add_metric([labels[n] for n in gauge.labels], value)


class _LabelBlock:
    """The text between a sample's braces for one set of labels: names in order, as
    ``generate_latest`` writes them."""

    def __init__(self, names: tuple[str, ...]) -> None:
        ordered = sorted(names)
        self.format = ",".join(f'{n}="%s"' for n in ordered)
        self.pick = itemgetter(*(LABEL_NAMES.index(n) for n in ordered))


class DeviceLines:
    """The sample lines of every device gauge for a row, rendered as ``generate_latest``
    renders them (the tests compare both): labels in name order and escaped, the value as Go
    prints a float. Each label block is built once per device, not once per gauge."""

    def __init__(self, gauges: Sequence[DeviceGauge] = DEVICE_GAUGES) -> None:
        blocks: dict[tuple[str, ...], _LabelBlock] = {}
        # per category: each label block with the gauges that use it (index, name, value)
        self.plan: dict[str, list[tuple[_LabelBlock, list[tuple[int, str, Any]]]]] = {}
        for index, gauge in enumerate(gauges):
            block = blocks.setdefault(gauge.labels, _LabelBlock(gauge.labels))
            for category in gauge.categories:
                groups = self.plan.setdefault(category, [])
                members = next((m for b, m in groups if b is block), None)
                if members is None:
                    groups.append((block, members := []))
                members.append((index, gauge.name, gauge.value))

    def add(self, row: DeviceRow, out: Sequence[list[str]]) -> None:
        """Append the row's line of each gauge to that gauge's list in ``out``."""
        groups = self.plan.get(row.category)
        if groups is None:
            return
        escaped = escaped_values(row)
        for block, members in groups:
            text = None
            for index, name, value_of in members:
                value = value_of(row)
                if value is None:
                    continue
                if text is None:
                    text = block.format % block.pick(escaped)
                out[index].append(f"{name}{{{text}}} {go_float(value)}\n")
