"""Metric families filled in bulk, for the exporter's per-tenant series (tens of thousands a scrape)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.samples import Sample


def gauge(name: str, documentation: str, labels: Sequence[str],
          samples: Iterable[tuple[dict[str, str], float]]) -> GaugeMetricFamily:
    """A gauge family of (label dict, value) samples, its Sample tuples built directly rather than
    through add_metric's per-call zip of label names and values."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    family.samples.extend(Sample(name, labels_, value, None) for labels_, value in samples)
    return family
