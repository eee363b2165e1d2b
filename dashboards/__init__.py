"""Grafana dashboards and Prometheus rules as code, built from the metric names in one module."""

from dashboards.build import all_dashboards, artefacts, build, check

__all__ = ["all_dashboards", "artefacts", "build", "check"]
