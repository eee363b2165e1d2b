"""PromQL phrases the dashboards and the rules share, so that both compute a thing the same way."""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.metric_names import SERVER_ERROR


def selector(metric: str, *matchers: str) -> str:
    """``metric{a="b", ...}``, dropping empty matchers."""
    kept = [m for m in matchers if m]
    return f"{metric}{{{', '.join(kept)}}}" if kept else metric


def total(labels: Sequence[str]) -> str:
    """``sum by (a, b) `` or a bare ``sum``."""
    return f"sum by ({', '.join(labels)}) " if labels else "sum"


def sum_rate(metric: str, window: str, labels: Sequence[str] = (), *matchers: str) -> str:
    """Per-second rate of a counter over a window, summed by the given labels."""
    return f"{total(labels)}(rate({selector(metric, *matchers)}[{window}]))"


def sum_increase(metric: str, window: str, labels: Sequence[str] = (), *matchers: str) -> str:
    """How much a counter grew over a window, summed by the given labels."""
    return f"{total(labels)}(increase({selector(metric, *matchers)}[{window}]))"


def share(part: str, whole: str) -> str:
    """``part / whole``, where no ``part`` series (nothing bad happened) reads as 0, not as no data."""
    return f"({part} or {whole} * 0) / {whole}"


def error_ratio(metric: str, window: str, labels: Sequence[str], *matchers: str, status: str = "status") -> str:
    """Share of requests answered with a 5xx, by the given labels."""
    errors = sum_rate(metric, window, labels, f"{status}=~{SERVER_ERROR}", *matchers)
    return share(errors, sum_rate(metric, window, labels, *matchers))


def quantile(q: float, bucket: str, window: str, labels: Sequence[str], *matchers: str) -> str:
    """A quantile of a histogram, by the given labels."""
    return f"histogram_quantile({q}, {sum_rate(bucket, window, ('le', *labels), *matchers)})"
