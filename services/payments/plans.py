"""The subscription plan catalogue: admins set each plan's price and period, students only name a plan."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import Conflict, NotFound
from services.kit.time import as_utc, utcnow
from services.payments import repository
from services.payments.models import SubscriptionPlan
from services.payments.schemas import PlanCreate, PlanOut, PlanUpdate
from services.payments.service import Actor, audit

CURRENCY = "INR"


class PlanNotFound(NotFound):
    type, title = "plan-not-found", "No such plan"


class PlanRetired(Conflict):
    type, title = "plan-retired", "Plan retired"


class PlanExists(Conflict):
    type, title = "plan-exists", "Plan code taken"


def plan_out(plan: SubscriptionPlan) -> PlanOut:
    return PlanOut(
        code=plan.code,
        name=plan.name,
        amount_paise=plan.amount_paise,
        currency=plan.currency,
        period=plan.period,
        active=plan.retired_at is None,
        retired_at=as_utc(plan.retired_at) if plan.retired_at else None,
    )


async def _find(db: AsyncSession, code: str, *, lock: bool = False) -> SubscriptionPlan:
    plan = await repository.get_plan(db=db, code=code, lock=lock)
    if plan is None:
        raise PlanNotFound(f"No plan {code!r}")
    return plan


async def plan_to_subscribe(*, db: AsyncSession, code: str) -> SubscriptionPlan:
    """Gets the plan a new subscription is for; an unknown or retired plan refuses it."""
    plan = await repository.get_plan(db=db, code=code)
    if plan is None:
        raise PlanNotFound(f"No plan {code!r}; GET /subscriptions/plans lists them", errors=[_field("unknown plan")])
    if plan.retired_at is not None:
        raise PlanRetired(f"The plan {code!r} takes no new subscriptions", errors=[_field("retired")])
    return plan


def _field(message: str) -> dict[str, str]:
    return {"field": "plan", "message": message}


async def list_plans(*, db: AsyncSession, include_retired: bool = False) -> list[PlanOut]:
    """Lists the plans open to subscribe (and the retired ones, for admins)."""
    return [plan_out(p) for p in await repository.list_plans(db=db, include_retired=include_retired)]


async def create_plan(*, db: AsyncSession, identity: Identity, client: ClientInfo, request: PlanCreate) -> PlanOut:
    """Adds a plan to the catalogue; a code already taken is a 409."""
    now = utcnow()
    plan = SubscriptionPlan(
        code=request.code,
        name=request.name,
        amount_paise=request.amount_paise,
        currency=CURRENCY,
        period=request.period,
        created_at=now,
        updated_at=now,
        retired_at=None,
    )
    if not await repository.add_plan_once(db=db, plan=plan):
        raise PlanExists(f"A plan {request.code!r} exists; update it instead")
    await audit(
        db,
        Actor.of(identity, client),
        action="create_plan",
        outcome="created",
        reason=f"{plan.code}: {plan.amount_paise} paise {plan.period}",
    )
    return plan_out(plan)


async def update_plan(
    *, db: AsyncSession, identity: Identity, client: ClientInfo, code: str, request: PlanUpdate
) -> PlanOut:
    """Changes a plan's name, price or period; subscriptions already made keep theirs."""
    plan = await _find(db, code, lock=True)
    before = f"{plan.amount_paise} paise {plan.period}"
    for field, value in request.model_dump(exclude_none=True).items():
        setattr(plan, field, value)
    plan.updated_at = utcnow()
    await audit(
        db,
        Actor.of(identity, client),
        action="update_plan",
        outcome="updated",
        reason=f"{code}: {before} -> {plan.amount_paise} paise {plan.period}",
    )
    return plan_out(plan)


async def retire_plan(*, db: AsyncSession, identity: Identity, client: ClientInfo, code: str) -> PlanOut:
    """Closes a plan to new subscriptions; retiring it again changes nothing."""
    plan = await _find(db, code, lock=True)
    if plan.retired_at is None:
        plan.retired_at = plan.updated_at = utcnow()
        await audit(db, Actor.of(identity, client), action="retire_plan", outcome="retired", reason=code)
    return plan_out(plan)
