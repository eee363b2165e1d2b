"""The templates a new academy starts with, per channel; seeded once, then edited as new versions."""

from __future__ import annotations

from typing import NamedTuple


class DefaultTemplate(NamedTuple):
    name: str
    channel: str
    subject: str | None
    body: str


_SIGN_OFF = "\n\nTeam Cerebrum Biology Academy"

DEFAULT_TEMPLATES: tuple[DefaultTemplate, ...] = (
    DefaultTemplate(
        "welcome",
        "email",
        "Welcome to Cerebrum Biology Academy, {{ name }}",
        "Hi {{ name }},\n\nWelcome to Cerebrum Biology Academy! Your account is ready: browse the courses, "
        "take a practice test and track your NEET preparation from your dashboard." + _SIGN_OFF,
    ),
    DefaultTemplate(
        "welcome", "whatsapp", None, "Hi {{ name }}, welcome to Cerebrum Biology Academy! Reply STOP to opt out."
    ),
    DefaultTemplate("welcome", "sms", None, "Welcome to Cerebrum Biology Academy, {{ name }}. Reply STOP to opt out."),
    DefaultTemplate(
        "welcome", "in_app", None, "Welcome, {{ name }}! Start with a practice test to see where you stand."
    ),
    DefaultTemplate(
        "enrolment_confirmation",
        "email",
        "You are enrolled in {{ course_title }}",
        "Hi {{ name }},\n\nYour enrolment in {{ course_title }} is confirmed ({{ amount_paise | rupees }}). "
        "The first lesson is waiting for you in your dashboard." + _SIGN_OFF,
    ),
    DefaultTemplate(
        "enrolment_confirmation",
        "whatsapp",
        None,
        "Hi {{ name }}, you are enrolled in {{ course_title }}. See you in class! Reply STOP to opt out.",
    ),
    DefaultTemplate("enrolment_confirmation", "sms", None, "Cerebrum: you are enrolled in {{ course_title }}."),
    DefaultTemplate("enrolment_confirmation", "in_app", None, "You are enrolled in {{ course_title }}."),
    DefaultTemplate(
        "payment_receipt",
        "email",
        "Payment receipt: {{ amount_paise | rupees }}",
        "Hi {{ name }},\n\nWe received your payment of {{ amount_paise | rupees }} {{ currency }}.\n"
        "Payment reference: {{ payment_id }}" + _SIGN_OFF,
    ),
    DefaultTemplate(
        "payment_receipt",
        "whatsapp",
        None,
        "Hi {{ name }}, we received {{ amount_paise | rupees }} (ref {{ payment_id }}). Thank you!",
    ),
    DefaultTemplate("payment_receipt", "sms", None, "Cerebrum: payment of {{ amount_paise | rupees }} received."),
    DefaultTemplate("payment_receipt", "in_app", None, "Payment of {{ amount_paise | rupees }} received."),
    DefaultTemplate(
        "assessment_result",
        "email",
        "Your {{ topic }} test result: {{ percentage }}%",
        "Hi {{ name }},\n\nYou scored {{ score }} out of {{ max_score }} ({{ percentage }}%) in {{ topic }}. "
        "Review the explanations to turn every mistake into a mark." + _SIGN_OFF,
    ),
    DefaultTemplate(
        "assessment_result", "whatsapp", None, "Hi {{ name }}, you scored {{ percentage }}% in {{ topic }}. Keep going!"
    ),
    DefaultTemplate("assessment_result", "sms", None, "Cerebrum: you scored {{ percentage }}% in {{ topic }}."),
    DefaultTemplate("assessment_result", "in_app", None, "You scored {{ percentage }}% in {{ topic }}."),
    DefaultTemplate(
        "course_completion",
        "email",
        "You completed {{ course_title }}",
        "Hi {{ name }},\n\nCongratulations: you have completed every lesson of {{ course_title }}! "
        "Revise with a practice test to keep it fresh for NEET." + _SIGN_OFF,
    ),
    DefaultTemplate(
        "course_completion",
        "whatsapp",
        None,
        "Hi {{ name }}, you completed {{ course_title }}. Well done! Reply STOP to opt out.",
    ),
    DefaultTemplate("course_completion", "sms", None, "Cerebrum: you completed {{ course_title }}. Well done!"),
    DefaultTemplate(
        "course_completion", "in_app", None, "Congratulations, {{ name }}: you completed {{ course_title }}!"
    ),
    DefaultTemplate(
        "refund_confirmation",
        "email",
        "Refund of {{ amount_paise | rupees }} on its way",
        "Hi {{ name }},\n\nWe have refunded {{ amount_paise | rupees }} {{ currency }} for {{ description }}. "
        "It reaches your account in 5-7 working days.\nCredit note: {{ credit_note_number }}" + _SIGN_OFF,
    ),
    DefaultTemplate(
        "refund_confirmation",
        "whatsapp",
        None,
        "Hi {{ name }}, we have refunded {{ amount_paise | rupees }} for {{ description }} "
        "(credit note {{ credit_note_number }}).",
    ),
    DefaultTemplate(
        "refund_confirmation", "sms", None, "Cerebrum: {{ amount_paise | rupees }} refunded ({{ credit_note_number }})."
    ),
    DefaultTemplate(
        "refund_confirmation",
        "in_app",
        None,
        "{{ amount_paise | rupees }} refunded for {{ description }}; credit note {{ credit_note_number }}.",
    ),
)
