from __future__ import annotations

from pydantic import Field

from services.kit.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """The analytics service: learning events, their aggregates, reports and the live view."""

    service_name: str = "analytics"
    # Reports may run a quarter second behind: a batch of events is recorded with one COPY and one
    # upsert per aggregate, however many it holds.
    consumer_linger_ms: int = Field(default=250, ge=0, le=5_000)
    retention_months: int = Field(default=24, ge=1, description="Raw events older than this many months are dropped")
    max_batch_events: int = Field(default=1000, ge=1, le=10_000)
    max_properties_bytes: int = Field(default=4096, ge=2)

    @property
    def max_batch_bytes(self) -> int:
        """The largest body the batch route takes: a full batch of events with the largest properties."""
        return self.max_batch_events * (self.max_properties_bytes + 1024)

    future_skew_seconds: int = Field(default=86_400, ge=0, description="How far ahead of now an event may be dated")
    aggregator_interval_seconds: float = Field(default=1.0, gt=0)
    aggregator_batch_events: int = Field(default=20_000, ge=1, description="Raw events folded per transaction")
    maintenance_interval_seconds: float = Field(default=86_400.0, gt=0, description="Partitions and retention")
    partition_months_behind: int = Field(default=1, ge=0)
    partition_months_ahead: int = Field(default=2, ge=0)
    live_interval_seconds: float = Field(default=5.0, gt=0)
    live_window_seconds: int = Field(default=300, ge=1, description="A learner seen this recently counts as live")
