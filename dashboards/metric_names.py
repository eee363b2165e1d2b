"""Every metric, recording-rule and label-value name the dashboards and the alert rules query.

One module, so that a rename is one edit, and so that tests/observability_as_code can check each
name against what the code declares and the running platform emits. Names of series Prometheus
stores are given in full (``_total``, ``_bucket``, ``_count``), as a query spells them.
"""

from __future__ import annotations

# -- RED, recorded by every service (observability/metrics.py) ---------------------------------
HTTP_REQUESTS = "http_requests_total"
HTTP_DURATION = "http_request_duration_seconds"
HTTP_DURATION_BUCKET = f"{HTTP_DURATION}_bucket"
HTTP_DURATION_COUNT = f"{HTTP_DURATION}_count"
HTTP_IN_FLIGHT = "http_requests_in_flight"

# -- Events, outbox and consumers (services/kit/events/telemetry.py) ---------------------------
EVENTS_PUBLISHED = "cerebrum_events_published_total"
EVENTS_CONSUMED = "cerebrum_events_consumed_total"
EVENTS_RETRIED = "cerebrum_events_retried_total"
EVENTS_DEAD_LETTERED = "cerebrum_events_dead_lettered_total"
OUTBOX_OLDEST_AGE = "cerebrum_outbox_oldest_unsent_age_seconds"
OUTBOX_PENDING = "cerebrum_outbox_pending_events"
OUTBOX_RELAY_FAILURES = "cerebrum_outbox_relay_failures_total"

# -- Calls between services, caches, rate limits (services/kit, services/courses/cache.py) ------
DEPENDENCY_REQUESTS = "cerebrum_dependency_requests_total"
DEPENDENCY_DURATION_BUCKET = "cerebrum_dependency_request_duration_seconds_bucket"
CIRCUIT_BREAKER_STATE = "cerebrum_circuit_breaker_state"
CIRCUIT_BREAKER_TRANSITIONS = "cerebrum_circuit_breaker_transitions_total"
CACHE_REQUESTS = "cerebrum_cache_requests_total"
RATELIMIT_FALLBACK = "cerebrum_ratelimit_fallback_total"
AUTH_REVOCATION_SKIPPED = "cerebrum_auth_revocation_check_skipped_total"

# -- Gateway and the strangler-fig split (services/gateway) -------------------------------------
GATEWAY_REQUESTS = "cerebrum_gateway_requests_total"
GATEWAY_DURATION_BUCKET = "cerebrum_gateway_request_duration_seconds_bucket"
GATEWAY_TRAFFIC_WEIGHT = "cerebrum_gateway_traffic_weight"
GATEWAY_EDGE_COPIES = "cerebrum_gateway_edge_copies_total"
SHADOW_REQUESTS = "cerebrum_shadow_requests_total"
SHADOW_DIFFS = "cerebrum_shadow_diffs_total"

# -- Business, declared where they are counted ---------------------------------------------------
REGISTRATIONS = "cerebrum_registrations_total"
LOGINS = "cerebrum_logins_total"
REFRESH_TOKEN_REUSE = "cerebrum_refresh_token_reuse_total"
SEAT_RESERVATIONS = "cerebrum_seat_reservations_total"
ENROLLMENTS = "cerebrum_enrollments_total"
SAGA_STEPS = "cerebrum_saga_steps_total"
PAYMENTS = "cerebrum_payments_total"
REVENUE_PAISE = "cerebrum_revenue_paise_total"
PAYMENT_WEBHOOKS = "cerebrum_payment_webhooks_total"
ASSESSMENTS_SUBMITTED = "cerebrum_assessments_submitted_total"
ASSESSMENT_SCORE_SUM = "cerebrum_assessment_score_percent_sum"
ASSESSMENT_SCORE_COUNT = "cerebrum_assessment_score_percent_count"
QUESTION_POOL_FALLBACK = "cerebrum_question_pool_fallback_total"
LEADERBOARD_UPDATE_FAILURES = "cerebrum_leaderboard_update_failures_total"
NOTIFICATIONS = "cerebrum_notifications_total"
NOTIFICATION_QUEUE_DEPTH = "cerebrum_notification_queue_depth"
NOTIFICATION_SEND_BUCKET = "cerebrum_notification_send_seconds_bucket"
ANALYTICS_EVENTS_INGESTED = "cerebrum_analytics_events_ingested_total"
ANALYTICS_AGGREGATION_LAG = "cerebrum_analytics_aggregation_lag_seconds"

# -- Scraped from outside our code: the test accepts these without finding them in the registry.
UP = "up"
PG_STAT_ACTIVITY_COUNT = "pg_stat_activity_count"
RABBITMQ_QUEUE_MESSAGES_READY = "rabbitmq_queue_messages_ready"
EXPORTER_METRICS: dict[str, str] = {
    UP: "Prometheus itself, one series per scrape target (1 reachable, 0 not)",
    PG_STAT_ACTIVITY_COUNT: "postgres_exporter (prometheuscommunity/postgres-exporter) beside PostgreSQL",
    RABBITMQ_QUEUE_MESSAGES_READY: "RabbitMQ's rabbitmq_prometheus plugin, per-queue (/metrics/per-object)",
}

# Metrics promised by a service still being built: queried already, declared nowhere yet, with
# the service that will declare them. The dashboard test accepts them with a warning naming the
# panels that wait for them, and tells you to take a name out once its service declares it.
PENDING: dict[str, str] = {}

# -- Recording rules (alerts/cerebrum_rules.yml, built by dashboards/rules.py) -------------------
SERVICE_REQUESTS_RATE5M = "service:http_requests:rate5m"
SERVICE_ERRORS_RATE5M = "service:http_errors:rate5m"
SERVICE_ERROR_RATIO_RATE5M = "service:http_errors:ratio_rate5m"
SERVICE_P95_5M = "service:http_request_duration_seconds:p95_5m"

# SLO rules are not ours: `cerebrum slo rules` generates them from slo/specs/*.yaml into
# alerts/slo/ (the SLO checker's single source of truth), labelled service and slo (the objective's
# name: availability, latency-p95). The SLO dashboard reads them under these names.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
SLO_BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
SLO_OBJECTIVE = "slo:objective:ratio"
SLO_BURN_RATES = (14.4, 6.0, 3.0, 1.0)
"""The burn rates the SLO alerts fire at (slo/burn.py): page at 14.4x and 6x, ticket at 3x and 1x."""


def slo_error_ratio(window: str) -> str:
    """Names the recording rule of an SLO's bad share (5xx, or slower than its threshold) over a window."""
    return f"slo:sli_error:ratio_rate{window}"


# -- Label values ----------------------------------------------------------------------------------
SERVICES = ("users", "courses", "enrollments", "payments", "analytics", "communication", "assessments", "gateway")
SERVER_ERROR = '"5.."'
"""A status matcher's regex for 5xx responses, quoted for PromQL."""
SIDES = ("monolith", "service")
