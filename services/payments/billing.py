"""Tax invoices, one per captured payment, and credit notes, one per refund: each numbered without gaps
per Indian financial year in its own series, GST shown."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Identity
from services.kit.deps import ClientInfo
from services.kit.errors import NotFound
from services.kit.time import as_utc
from services.payments import repository
from services.payments.models import CreditNote, Invoice, Order, Payment, Refund
from services.payments.schemas import CreditNoteOut, InvoiceOut
from services.payments.service import Actor, PaymentsContext, authorise

GST_RATE_PERCENT = 18
IST = timezone(timedelta(hours=5, minutes=30), "IST")


def financial_year(moment: datetime) -> str:
    """India's financial year of a moment (April to March, in IST): ``2026-27``."""
    local = as_utc(moment).astimezone(IST)
    start = local.year if local.month >= 4 else local.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def split_gst(total_paise: int, rate_percent: int = GST_RATE_PERCENT) -> tuple[int, int]:
    """Splits a GST-inclusive total into (base, gst), in paise; the two always add up to the total."""
    base = round(total_paise * 100 / (100 + rate_percent))
    return base, total_paise - base


async def issue_invoice(
    db: AsyncSession, ctx: PaymentsContext, *, order: Order, payment: Payment, at: datetime
) -> Invoice:
    """Issues the invoice for a captured payment, taking the year's next number in this transaction."""
    year = financial_year(at)
    sequence = await repository.take_invoice_sequence(db=db, financial_year=year)
    base, gst = split_gst(payment.amount_paise)
    invoice = Invoice(
        id=uuid.uuid4(),
        number=f"{ctx.settings.invoice_prefix}/{year}/{sequence:06d}",
        financial_year=year,
        sequence=sequence,
        order_id=order.id,
        payment_id=payment.id,
        user_id=order.user_id,
        description=order.description,
        total_paise=payment.amount_paise,
        base_paise=base,
        gst_paise=gst,
        gst_rate_percent=GST_RATE_PERCENT,
        currency=payment.currency,
        issued_at=at,
    )
    await repository.add_invoice(db=db, invoice=invoice)
    return invoice


async def issue_credit_note(
    db: AsyncSession, ctx: PaymentsContext, *, invoice: Invoice, refund: Refund, at: datetime
) -> CreditNote:
    """Issues the credit note that cancels a refunded payment's invoice, in the refund's transaction.

    A full refund reverses the invoice exactly: the same base and GST, so that the two cancel out.
    """
    year = financial_year(at)
    sequence = await repository.take_credit_note_sequence(db=db, financial_year=year)
    note = CreditNote(
        id=uuid.uuid4(),
        number=f"{ctx.settings.invoice_prefix}/CN/{year}/{sequence:06d}",
        financial_year=year,
        sequence=sequence,
        invoice_id=invoice.id,
        refund_id=refund.id,
        user_id=invoice.user_id,
        total_paise=invoice.total_paise,
        base_paise=invoice.base_paise,
        gst_paise=invoice.gst_paise,
        gst_rate_percent=invoice.gst_rate_percent,
        currency=invoice.currency,
        issued_at=at,
    )
    await repository.add_rows(db=db, rows=[note])
    return note


def credit_note_out(note: CreditNote, invoice: Invoice) -> CreditNoteOut:
    return CreditNoteOut(
        id=note.id,
        number=note.number,
        financial_year=note.financial_year,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        total_paise=note.total_paise,
        base_paise=note.base_paise,
        gst_paise=note.gst_paise,
        gst_rate_percent=note.gst_rate_percent,
        currency=note.currency,
        issued_at=as_utc(note.issued_at),
    )


async def get_invoice(*, db: AsyncSession, identity: Identity, client: ClientInfo, invoice_id: uuid.UUID) -> InvoiceOut:
    """Gets an invoice (its owner or an admin)."""
    invoice = await repository.get_invoice(db=db, invoice_id=invoice_id)
    if invoice is None:
        raise NotFound("No such invoice")
    actor = Actor.of(identity, client)
    await authorise(db, actor, identity, owner=invoice.user_id, action="read_invoice", order_id=invoice.order_id)
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        financial_year=invoice.financial_year,
        order_id=invoice.order_id,
        payment_id=invoice.payment_id,
        user_id=invoice.user_id,
        description=invoice.description,
        total_paise=invoice.total_paise,
        base_paise=invoice.base_paise,
        gst_paise=invoice.gst_paise,
        gst_rate_percent=invoice.gst_rate_percent,
        currency=invoice.currency,
        issued_at=as_utc(invoice.issued_at),
    )
