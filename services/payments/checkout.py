"""The sandbox checkout: what a student's browser and Razorpay would do, for demos and tests."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import NotFound
from services.payments.schemas import SandboxCheckoutOut, SandboxCheckoutRequest, SandboxWebhook
from services.payments.service import Actor, PaymentsContext, audit, authorise, find_order


async def sandbox_checkout(
    *, db: AsyncSession, ctx: PaymentsContext, identity: Identity, client: ClientInfo, request: SandboxCheckoutRequest
) -> SandboxCheckoutOut:
    """Pays or fails an order in the sandbox; returns the checkout's fields and the webhook it would send."""
    if ctx.sandbox is None:
        raise NotFound("The sandbox checkout exists only when PAYMENT_PROVIDER=sandbox")
    actor = Actor.of(identity, client)
    order = await find_order(db, request.order_id)
    await authorise(db, actor, identity, owner=order.user_id, action="sandbox_checkout", order_id=order.id)
    result = ctx.sandbox.checkout(
        order_id=order.provider_order_id,
        amount_paise=order.amount_paise,
        currency=order.currency,
        outcome=request.outcome,
    )
    await audit(db, actor, action="sandbox_checkout", outcome=result.outcome, order_id=order.id)
    return SandboxCheckoutOut(
        outcome=result.outcome,
        razorpay_order_id=result.razorpay_order_id,
        razorpay_payment_id=result.razorpay_payment_id,
        razorpay_signature=result.razorpay_signature,
        error_description=result.error_description,
        # The gateway's URL, the one a student's provider dashboard would be given.
        webhook=SandboxWebhook(
            url="/api/payments/webhooks/razorpay", headers=result.webhook_headers, body=result.webhook_body
        ),
    )
