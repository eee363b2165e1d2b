"""Where the evaluator reads SLIs from: Prometheus, a Locust run's stats, or a direct scrape."""

from slo.sources.locust import read_locust
from slo.sources.prometheus import PrometheusClient, read_prometheus
from slo.sources.scrape import read_scrape, samples_from_metrics

__all__ = ["PrometheusClient", "read_locust", "read_prometheus", "read_scrape", "samples_from_metrics"]
