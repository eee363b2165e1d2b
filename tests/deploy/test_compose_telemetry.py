"""compose/: the telemetry stack's configs agree with each other and with the services they watch."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.composefile import bind_mounts
from tests.deploy.conftest import COMPOSE_DIR, PORTS, REPO, load_yaml


def test_container_logs_reach_the_collector(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        options = service["logging"]["options"]
        assert service["logging"]["driver"] == "json-file", name
        assert "com.docker.compose.service" in options["labels"], name
    mounts = [target for service, _, target in bind_mounts(compose) if service == "otel-collector"]
    assert "/var/lib/docker/containers" in mounts


def test_prometheus_scrapes_every_process_and_exporter(compose: dict[str, Any]) -> None:
    config = load_yaml(COMPOSE_DIR / "prometheus.yml")
    jobs = {
        job["job_name"]: [t for s in job.get("static_configs", []) for t in s["targets"]]
        for job in config["scrape_configs"]
    }
    # One job per process, named after it: the alert rules read `up{job="users"}`.
    assert all(jobs[name] == [f"{name}:{port}"] for name, port in PORTS.items())
    targets = {target for job in jobs.values() for target in job}
    assert {"postgres-exporter:9187", "redis-exporter:9121", "rabbitmq:15692", "otel-collector:8889"} <= targets
    assert {target.split(":")[0] for target in targets} <= set(compose["services"]) | {"localhost"}
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    assert "--enable-feature=exemplar-storage" in compose["services"]["prometheus"]["command"]


def test_prometheus_loads_every_rule_file_and_no_promtool_test(compose: dict[str, Any]) -> None:
    source, target = next((src, t) for s, src, t in bind_mounts(compose) if s == "prometheus" and src == "../alerts")
    alerts = (COMPOSE_DIR / source).resolve()
    globs = load_yaml(COMPOSE_DIR / "prometheus.yml")["rule_files"]
    assert all(glob.startswith(f"{target}/") for glob in globs)
    loaded = {path for glob in globs for path in alerts.glob(glob.removeprefix(f"{target}/"))}
    rule_files = {path for path in alerts.rglob("*.yml") if "groups" in (load_yaml(path) or {})}
    assert loaded == rule_files, f"not loaded: {rule_files - loaded}; not rule files: {loaded - rule_files}"


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(COMPOSE_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_every_alert_to_a_known_receiver() -> None:
    config = load_yaml(COMPOSE_DIR / "alertmanager.yml")
    receivers = {receiver["name"] for receiver in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {route["receiver"] for route in routes} <= receivers
    result = subprocess.run(
        ["amtool", "check-config", str(COMPOSE_DIR / "alertmanager.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_collector_pipelines_are_wired_to_jaeger_prometheus_and_loki(compose: dict[str, Any]) -> None:
    config = load_yaml(COMPOSE_DIR / "otel-collector.yaml")
    pipelines = config["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(section, [])) <= set(config[section]), f"{name}: undefined {section}"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert all(pipelines[name]["exporters"] == ["otlphttp/loki"] for name in pipelines if name.startswith("logs"))
    assert "loki" not in config["exporters"], "the contrib `loki` exporter was removed; use Loki's OTLP endpoint"
    for name, exporter in config["exporters"].items():
        endpoint = exporter["endpoint"]
        host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname
        assert host in set(compose["services"]) | {"0.0.0.0"}, f"{name} exports to {host}"
    protocols = config["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"grpc", "http"}
    mounted = {target for service, _, target in bind_mounts(compose) if service == "otel-collector"}
    assert all(
        Path(glob).parent.parent.as_posix() in mounted for glob in config["receivers"]["filelog/containers"]["include"]
    )


def test_grafana_provisioning_matches_the_stack(compose: dict[str, Any]) -> None:
    provisioning = REPO / "dashboards" / "provisioning"
    datasources = {source["uid"]: source for source in load_yaml(provisioning / "datasources.yaml")["datasources"]}
    assert {"prometheus", "jaeger", "loki"} <= set(datasources)
    for uid in ("prometheus", "jaeger", "loki"):
        assert urlsplit(datasources[uid]["url"]).hostname == uid, f"data source {uid} must point at the {uid} service"
    dashboards_mount = next(t for s, src, t in bind_mounts(compose) if s == "grafana" and src == "../dashboards/json")
    providers = load_yaml(provisioning / "dashboards.yaml")["providers"]
    assert any(provider["options"]["path"].rstrip("/") == dashboards_mount for provider in providers)


def test_the_exporters_the_alert_rules_read_are_in_the_stack(compose: dict[str, Any]) -> None:
    # ConsumerLag: the broker's own plugin, scraped per queue (the plain /metrics sums every queue).
    mounted = {target: source for service, source, target in bind_mounts(compose) if service == "rabbitmq"}
    plugins = (COMPOSE_DIR / mounted["/etc/rabbitmq/enabled_plugins"]).read_text()
    assert "rabbitmq_prometheus" in plugins
    jobs = {job["job_name"]: job for job in load_yaml(COMPOSE_DIR / "prometheus.yml")["scrape_configs"]}
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"
    # DatabaseConnectionsHigh: postgres_exporter reading the stack's own PostgreSQL.
    exporter = compose["services"]["postgres-exporter"]
    assert exporter["environment"]["DATA_SOURCE_URI"].startswith("postgres:5432/")
    assert exporter["depends_on"]["postgres"]["condition"] == "service_healthy"
