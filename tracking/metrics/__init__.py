"""Prometheus metrics: the update pipeline's counters kept in the database (a subscriber of
every batch of updates), and the collector ``GET /metrics`` renders."""

from tracking.metrics.collector import Exposition, MetricsCollector
from tracking.metrics.readers import open_alert_counts
from tracking.metrics.recorder import BUCKET_BOUNDS, UpdateMetrics

__all__ = [
    "BUCKET_BOUNDS",
    "Exposition",
    "MetricsCollector",
    "UpdateMetrics",
    "open_alert_counts",
]
