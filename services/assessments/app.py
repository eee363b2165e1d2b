from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.assessments.ai import ChatCompletions, OpenAIEvaluator, OpenAIVariantGenerator
from services.assessments.evaluator import AnswerEvaluator, RubricEvaluator
from services.assessments.generator import TemplateVariantGenerator, VariantGenerator
from services.assessments.leaderboard import Leaderboard
from services.assessments.models import OUTBOX
from services.assessments.pool import QuestionPool
from services.assessments.routes import router
from services.assessments.service import AssessmentsContext
from services.assessments.settings import AssessmentsSettings
from services.contracts.events import AssessmentCompleted, AssessmentSubmitted
from services.kit.app import Hook, ServiceKit, build_service_app

PUBLISHES = (AssessmentCompleted, AssessmentSubmitted)
"""The contracts this service records in its outbox (their counters exist at zero from start-up)."""

MIGRATIONS = Path(__file__).parent / "migrations"


def build_context(kit: ServiceKit, settings: AssessmentsSettings) -> tuple[AssessmentsContext, list[Hook]]:
    """Builds the assessment rules' collaborators: the AI adapter when configured, else the offline ones."""
    evaluator: AnswerEvaluator = RubricEvaluator()
    generator: VariantGenerator = TemplateVariantGenerator()
    on_shutdown: list[Hook] = []
    if settings.evaluator_url:
        client = ChatCompletions(
            url=settings.evaluator_url,
            api_key=settings.evaluator_api_key,
            model=settings.evaluator_model,
            timeout_seconds=settings.evaluator_timeout_seconds,
        )
        evaluator, generator = OpenAIEvaluator(client), OpenAIVariantGenerator(client)

        async def close_client(_kit: ServiceKit) -> None:
            await client.close()

        on_shutdown.append(close_client)
    ctx = AssessmentsContext(
        settings=settings,
        pool=QuestionPool(redis=kit.redis, settings=settings),
        leaderboard=Leaderboard(redis=kit.redis, settings=settings),
        evaluator=evaluator,
        generator=generator,
    )
    return ctx, on_shutdown


def create_app(settings: AssessmentsSettings | None = None) -> FastAPI:
    """Builds the assessments service: questions, scoring, ratings and leaderboards."""
    settings = settings or AssessmentsSettings()
    kit = ServiceKit.build(settings)
    ctx, on_shutdown = build_context(kit, settings)
    app = build_service_app(
        kit,
        title="Cerebrum assessments",
        routers=[router],
        migrations_dir=MIGRATIONS,
        on_shutdown=on_shutdown,
        description="Question pools, test attempts, scoring, adaptive difficulty and leaderboards.",
        outbox=OUTBOX,
        publishes=PUBLISHES,
    )
    app.state.assessments = ctx
    return app
