"""The real adapters of the AI boundary: any OpenAI-compatible chat-completions API, over aiohttp."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from services.assessments.evaluator import Evaluation
from services.assessments.generator import QuestionDraft
from services.kit.errors import DependencyUnavailable

_EVALUATE = (
    "You mark NEET biology free-text answers. Award marks only for rubric points the answer states "
    'correctly. Reply with JSON: {"score": <0..1, share of rubric weight earned>, "feedback": "<one sentence>"}.'
)
_VARIANTS = (
    "You write NEET biology questions. Given a question as JSON, write new questions testing the same idea "
    "at the same difficulty, with the same fields. Reply with JSON: "
    '{"variants": [<question objects>]}.'
)


class ChatCompletions:
    """A small client for ``POST {url}/chat/completions`` answering in JSON."""

    def __init__(self, *, url: str, api_key: SecretStr | None, model: str, timeout_seconds: float) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def ask_json(self, *, system: str, user: str) -> dict[str, Any]:
        """Asks one question; returns the model's JSON answer or raises DependencyUnavailable."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        try:
            async with self._session.post(self.url, json=body, headers=headers) as response:
                response.raise_for_status()
                reply = await response.json()
            answer = orjson.loads(reply["choices"][0]["message"]["content"])
        except (aiohttp.ClientError, TimeoutError, KeyError, IndexError, TypeError, orjson.JSONDecodeError) as exc:
            raise DependencyUnavailable("evaluator", "The AI evaluator did not answer usefully; try again") from exc
        if not isinstance(answer, dict):
            raise DependencyUnavailable("evaluator", "The AI evaluator did not answer usefully; try again")
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class OpenAIEvaluator:
    """Marks free text with a language model, against the same rubric the offline evaluator uses."""

    name = "openai"

    def __init__(self, client: ChatCompletions) -> None:
        self.client = client

    async def evaluate(self, *, stem: str, rubric: Sequence[dict[str, Any]], answer: str) -> Evaluation:
        """Asks the model to mark the answer against the rubric."""
        question = orjson.dumps({"question": stem, "rubric": list(rubric), "answer": answer}).decode()
        reply = await self.client.ask_json(system=_EVALUATE, user=question)
        try:
            score = min(1.0, max(0.0, float(reply["score"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise DependencyUnavailable("evaluator", "The AI evaluator gave no score; try again") from exc
        return Evaluation(score=score, feedback=str(reply.get("feedback", ""))[:500])


class OpenAIVariantGenerator:
    """Drafts question variants with a language model; an admin reviews them before they go live."""

    name = "openai"

    def __init__(self, client: ChatCompletions) -> None:
        self.client = client

    async def variants(self, *, question: QuestionDraft, count: int, seed: str) -> list[QuestionDraft]:
        """Asks the model for count variants; drops any that do not fit the question's shape."""
        prompt = orjson.dumps({"count": count, "question": asdict(question)}).decode()
        reply = await self.client.ask_json(system=_VARIANTS, user=prompt)
        drafts = []
        for item in reply.get("variants", [])[:count]:
            try:
                drafts.append(
                    QuestionDraft(
                        topic=question.topic,
                        difficulty=question.difficulty,
                        kind=question.kind,
                        stem=str(item["stem"]),
                        options=[str(o) for o in item["options"]] if question.options else None,
                        correct_option=int(item["correct_option"]) if question.options else None,
                        rubric=list(item.get("rubric") or question.rubric or []) or None,
                        explanation=item.get("explanation"),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return drafts
