"""Every service the platform runs, and how to build it: the one place that imports them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData

from services.analytics.app import MIGRATIONS as ANALYTICS_MIGRATIONS
from services.analytics.app import create_app as create_analytics_app
from services.analytics.models import AnalyticsBase
from services.analytics.settings import AnalyticsSettings
from services.assessments.app import MIGRATIONS as ASSESSMENTS_MIGRATIONS
from services.assessments.app import create_app as create_assessments_app
from services.assessments.models import AssessmentsBase
from services.assessments.settings import AssessmentsSettings
from services.communication.app import MIGRATIONS as COMMUNICATION_MIGRATIONS
from services.communication.app import create_app as create_communication_app
from services.communication.handlers import HANDLERS as COMMUNICATION_HANDLERS
from services.communication.models import CommunicationBase
from services.communication.settings import CommunicationSettings
from services.courses.app import MIGRATIONS as COURSES_MIGRATIONS
from services.courses.app import create_app as create_courses_app
from services.courses.handlers import enrolment_handlers
from services.courses.models import CoursesBase
from services.courses.settings import CoursesSettings
from services.enrollments.app import MIGRATIONS as ENROLLMENTS_MIGRATIONS
from services.enrollments.app import create_app as create_enrollments_app
from services.enrollments.consumers import consumed as enrollments_consumed
from services.enrollments.models import EnrollmentsBase
from services.enrollments.settings import EnrollmentsSettings
from services.kit.settings import ServiceSettings
from services.payments.app import MIGRATIONS as PAYMENTS_MIGRATIONS
from services.payments.app import create_app as create_payments_app
from services.payments.models import PaymentsBase
from services.payments.settings import PaymentsSettings
from services.users.app import MIGRATIONS as USERS_MIGRATIONS
from services.users.app import create_app as create_users_app
from services.users.models import UsersBase
from services.users.settings import UsersSettings

DEFAULT_BASE_PORT = 8100
"""Services on 8101-8107, as the gateway's and the saga's default upstream addresses expect."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_class: type[ServiceSettings]
    create_app: Callable[..., FastAPI]
    migrations: Path
    metadata: MetaData
    prefixes: tuple[str, ...]
    """First path segments this service answers (``/auth/...`` and ``/users/...`` for users)."""
    offset: int
    """Its port's distance from the distributed run's base port (cerebrum.ports)."""
    consumes: tuple[str, ...] = ()
    """Routing keys of the events it handles (its queue is declared before anyone publishes)."""
    calls_services: bool = False
    """Calls other services over HTTP: embedded, it is handed the in-process transport."""

    @property
    def port(self) -> int:
        """Where ``cerebrum serve`` listens by default: the default base port plus its offset."""
        return DEFAULT_BASE_PORT + self.offset


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "users", UsersSettings, create_users_app, USERS_MIGRATIONS, UsersBase.metadata, ("auth", "users"), 1
        ),
        ServiceSpec(
            "courses",
            CoursesSettings,
            create_courses_app,
            COURSES_MIGRATIONS,
            CoursesBase.metadata,
            ("courses", "curriculum"),
            2,
            consumes=tuple(enrolment_handlers()),
        ),
        ServiceSpec(
            "enrollments",
            EnrollmentsSettings,
            create_enrollments_app,
            ENROLLMENTS_MIGRATIONS,
            EnrollmentsBase.metadata,
            ("enrollments",),
            3,
            consumes=tuple(enrollments_consumed()),
            calls_services=True,
        ),
        ServiceSpec(
            "payments",
            PaymentsSettings,
            create_payments_app,
            PAYMENTS_MIGRATIONS,
            PaymentsBase.metadata,
            ("payments", "subscriptions", "billing"),
            4,
        ),
        ServiceSpec(
            "analytics",
            AnalyticsSettings,
            create_analytics_app,
            ANALYTICS_MIGRATIONS,
            AnalyticsBase.metadata,
            ("analytics",),
            5,
            consumes=(
                "user.registered",
                "enrollment.created",
                "enrollment.confirmed",
                "enrollment.progress_updated",
                "enrollment.completed",
                "enrollment.reopened",
                "assessment.submitted",
                "assessment.completed",
                "payment.succeeded",
                "user.deleted",
            ),
        ),
        ServiceSpec(
            "communication",
            CommunicationSettings,
            create_communication_app,
            COMMUNICATION_MIGRATIONS,
            CommunicationBase.metadata,
            ("notifications", "whatsapp", "email", "communication"),
            6,
            consumes=tuple(COMMUNICATION_HANDLERS),
        ),
        ServiceSpec(
            "assessments",
            AssessmentsSettings,
            create_assessments_app,
            ASSESSMENTS_MIGRATIONS,
            AssessmentsBase.metadata,
            ("assessments", "questions", "leaderboard"),
            7,
        ),
    )
}


def settings_for(name: str, **overrides: Any) -> ServiceSettings:
    """Reads a service's settings from the environment, with overrides on top."""
    return SERVICES[name].settings_class(**overrides)
