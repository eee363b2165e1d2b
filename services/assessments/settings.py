from __future__ import annotations

from pydantic import SecretStr

from services.kit.settings import ServiceSettings


class AssessmentsSettings(ServiceSettings):
    """The assessments service: question pools, scoring, evaluation and leaderboards."""

    service_name: str = "assessments"
    # A pool per (topic, difficulty) is re-read from the database when older than this.
    question_pool_ttl_seconds: int = 300
    question_pool_max_size: int = 5000
    question_cache_ttl_seconds: int = 3600
    # How long the questions served to one attempt are remembered (no repeats within it).
    attempt_memory_ttl_seconds: int = 6 * 3600
    # An OpenAI-compatible API for evaluation and question variants; unset means the offline rubric.
    evaluator_url: str | None = None
    evaluator_api_key: SecretStr | None = None
    evaluator_model: str = "gpt-4o-mini"
    evaluator_timeout_seconds: float = 15.0
