"""Phase 3 of the migration: the monolith's database moved to a database (or schema) per service."""

from datamigration.endpoints import Endpoint, TargetLayout
from datamigration.migrate import MigrateOptions, ServiceResult, migrate
from datamigration.plan import PlanError, ServiceSchema, service_schemas
from datamigration.report import GateVerdict, phase3_gate
from datamigration.verify import verify

__all__ = [
    "Endpoint",
    "GateVerdict",
    "MigrateOptions",
    "PlanError",
    "ServiceResult",
    "ServiceSchema",
    "TargetLayout",
    "migrate",
    "phase3_gate",
    "service_schemas",
    "verify",
]
