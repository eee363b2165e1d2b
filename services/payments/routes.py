from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.kit.deps import AdminUser, ClientDep, CurrentUser, SessionDep
from services.payments import billing, checkout, methods, orders, plans, refunds, settlement, subscriptions
from services.payments.deps import HeadersDep, IdempotencyKeyHeader, PaymentsDep, RawBody
from services.payments.schemas import (
    HistoryPage,
    InvoiceOut,
    OrderCreate,
    OrderOut,
    PaymentMethodCreate,
    PaymentMethodOut,
    PaymentOut,
    PlanCreate,
    PlanOut,
    PlanUpdate,
    RefundOut,
    RefundRequest,
    SandboxCheckoutOut,
    SandboxCheckoutRequest,
    SubscriptionCreate,
    SubscriptionOut,
    VerifyRequest,
    WebhookAck,
)

router = APIRouter()
WEBHOOK_BODY = {"requestBody": {"content": {"application/json": {}}, "required": True}}


@router.post("/payments/create-order", status_code=status.HTTP_201_CREATED, tags=["payments"])
async def create_order(
    body: OrderCreate,
    key: IdempotencyKeyHeader,
    identity: CurrentUser,
    db: SessionDep,
    ctx: PaymentsDep,
    client: ClientDep,
    response: Response,
) -> OrderOut:
    """Creates a payment order (the student, or a service acting for them); a retried key returns it again."""
    order, created = await orders.create_order(
        db=db, ctx=ctx, identity=identity, client=client, request=body, idempotency_key=key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return order


@router.get("/payments/orders/{order_id}", tags=["payments"])
async def get_order(order_id: uuid.UUID, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep) -> OrderOut:
    """Gets an order (its owner, a service or an admin)."""
    return await orders.get_order(db=db, ctx=ctx, identity=identity, order_id=order_id)


@router.post("/payments/orders/{order_id}/cancel", tags=["payments"])
async def cancel_order(
    order_id: uuid.UUID, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> OrderOut:
    """Cancels an unpaid order (the enrolment saga's compensation); again is harmless, a paid order is 409."""
    return await orders.cancel_order(db=db, ctx=ctx, identity=identity, client=client, order_id=order_id)


@router.post("/payments/orders/{order_id}/refund", tags=["payments"])
async def refund_order(
    order_id: uuid.UUID,
    body: RefundRequest,
    identity: CurrentUser,
    db: SessionDep,
    ctx: PaymentsDep,
    client: ClientDep,
) -> RefundOut:
    """Refunds a paid order in full within the refund window, with a credit note (services and admins)."""
    return await refunds.refund_order(db=db, ctx=ctx, identity=identity, client=client, order_id=order_id, request=body)


@router.post("/payments/verify", tags=["payments"])
async def verify_payment(
    body: VerifyRequest, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> PaymentOut:
    """Confirms a checkout by its signature and pays the order; repeating it returns the same payment."""
    return await settlement.verify_payment(db=db, ctx=ctx, identity=identity, client=client, request=body)


@router.post("/payments/webhooks/{source}", tags=["webhooks"], openapi_extra=WEBHOOK_BODY)
async def provider_webhook(
    source: str, body: RawBody, headers: HeadersDep, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> WebhookAck:
    """Takes the provider's signed payment notices (``razorpay`` or ``stripe``, whichever is configured)."""
    return await settlement.receive_webhook(db=db, ctx=ctx, client=client, source=source, body=body, headers=headers)


@router.post("/payments/sandbox/checkout", tags=["sandbox"])
async def sandbox_checkout(
    body: SandboxCheckoutRequest, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> SandboxCheckoutOut:
    """Pays or fails an order as a browser would (sandbox provider); returns what verify and the webhook need."""
    return await checkout.sandbox_checkout(db=db, ctx=ctx, identity=identity, client=client, request=body)


@router.get("/payments/history/{user_id}", tags=["payments"])
async def payment_history(
    user_id: uuid.UUID,
    identity: CurrentUser,
    db: SessionDep,
    client: ClientDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HistoryPage:
    """Lists a student's orders and payments, newest first (the student or an admin)."""
    return await orders.payment_history(
        db=db, identity=identity, client=client, user_id=user_id, limit=limit, offset=offset
    )


@router.post("/payments/methods", status_code=status.HTTP_201_CREATED, tags=["payment methods"])
async def save_payment_method(
    body: PaymentMethodCreate, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> PaymentMethodOut:
    """Stores a card or UPI token from the provider for later; it is encrypted and never shown again."""
    return await methods.save_payment_method(db=db, ctx=ctx, identity=identity, client=client, request=body)


@router.get("/payments/methods", tags=["payment methods"])
async def list_payment_methods(identity: CurrentUser, db: SessionDep) -> list[PaymentMethodOut]:
    """Lists the caller's stored payment methods: kind, brand, last four digits and expiry."""
    return await methods.list_payment_methods(db=db, identity=identity)


@router.get("/subscriptions/plans", tags=["subscriptions"])
async def list_plans(db: SessionDep) -> list[PlanOut]:
    """Lists the plans open to subscribe, with their price and period (no sign-in needed)."""
    return await plans.list_plans(db=db)


@router.get("/subscriptions/plans/all", tags=["subscription plans"])
async def list_all_plans(_admin: AdminUser, db: SessionDep) -> list[PlanOut]:
    """Lists every plan, retired ones too (admins)."""
    return await plans.list_plans(db=db, include_retired=True)


@router.post("/subscriptions/plans", status_code=status.HTTP_201_CREATED, tags=["subscription plans"])
async def create_plan(body: PlanCreate, admin: AdminUser, db: SessionDep, client: ClientDep) -> PlanOut:
    """Adds a plan to the catalogue (admins); a code already taken is a 409."""
    return await plans.create_plan(db=db, identity=admin, client=client, request=body)


@router.patch("/subscriptions/plans/{code}", tags=["subscription plans"])
async def update_plan(code: str, body: PlanUpdate, admin: AdminUser, db: SessionDep, client: ClientDep) -> PlanOut:
    """Changes a plan's name, price or period (admins); subscriptions already made keep theirs."""
    return await plans.update_plan(db=db, identity=admin, client=client, code=code, request=body)


@router.post("/subscriptions/plans/{code}/retire", tags=["subscription plans"])
async def retire_plan(code: str, admin: AdminUser, db: SessionDep, client: ClientDep) -> PlanOut:
    """Closes a plan to new subscriptions (admins); existing subscriptions run on, retiring again is harmless."""
    return await plans.retire_plan(db=db, identity=admin, client=client, code=code)


@router.post("/subscriptions/create", status_code=status.HTTP_201_CREATED, tags=["subscriptions"])
async def create_subscription(
    body: SubscriptionCreate,
    key: IdempotencyKeyHeader,
    identity: CurrentUser,
    db: SessionDep,
    ctx: PaymentsDep,
    client: ClientDep,
    response: Response,
) -> SubscriptionOut:
    """Starts a subscription to a catalogue plan with the order for its first period.

    The body names the plan only: its price and period are the catalogue's, and a body carrying an
    amount, currency or period is refused (422). An unknown plan is a 404 (`plan-not-found`), a
    retired one a 409 (`plan-retired`). A retried key returns the subscription made the first time.
    """
    subscription, created = await subscriptions.create_subscription(
        db=db, ctx=ctx, identity=identity, client=client, request=body, idempotency_key=key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return subscription


@router.put("/subscriptions/{subscription_id}/cancel", tags=["subscriptions"])
async def cancel_subscription(
    subscription_id: uuid.UUID, identity: CurrentUser, db: SessionDep, ctx: PaymentsDep, client: ClientDep
) -> SubscriptionOut:
    """Cancels a subscription (the owner or an admin); a paid period runs to its end."""
    return await subscriptions.cancel_subscription(
        db=db, ctx=ctx, identity=identity, client=client, subscription_id=subscription_id
    )


@router.get("/billing/invoice/{invoice_id}", tags=["billing"])
async def get_invoice(invoice_id: uuid.UUID, identity: CurrentUser, db: SessionDep, client: ClientDep) -> InvoiceOut:
    """Gets a GST invoice (its owner or an admin); amounts in paise, GST-inclusive."""
    return await billing.get_invoice(db=db, identity=identity, client=client, invoice_id=invoice_id)
