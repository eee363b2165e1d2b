from __future__ import annotations

from observability.redaction import REDACTED, mask_email, redact, redact_text


def test_secret_keys_are_redacted_wherever_they_sit() -> None:
    event = {
        "password": "hunter2-hunter2",
        "headers": {"Authorization": "Bearer abc.def.ghi", "accept": "*/*"},
        "nested": [{"refresh_token": "r-123"}],
        "card_number": "4111111111111111",
        "count": 3,
    }
    clean = redact(event)
    assert clean["password"] == REDACTED
    assert clean["headers"] == {"Authorization": REDACTED, "accept": "*/*"}
    assert clean["nested"] == [{"refresh_token": REDACTED}]
    assert clean["card_number"] == REDACTED
    assert clean["count"] == 3


def test_secrets_are_recognised_by_shape_in_free_text() -> None:
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    text = f"token {jwt} from Bearer s3cr3t-value-xyz card 4111 1111 1111 1111 by asha.rao@example.com"
    clean = redact_text(text)
    assert jwt not in clean and "s3cr3t-value-xyz" not in clean
    assert "4111 1111 1111 1111" not in clean and "****1111" in clean
    assert "asha.rao@example.com" not in clean and "a***@example.com" in clean


def test_numbers_that_fail_luhn_are_not_cards() -> None:
    assert redact_text("order 1234567890123456 shipped") == "order 1234567890123456 shipped"


def test_mask_email_keeps_only_first_letter_and_domain() -> None:
    assert mask_email("student@example.com") == "s***@example.com"


def test_spaced_cards_and_any_case_bearer_are_caught_in_text_with_nothing_else_to_give_them_away() -> None:
    assert redact_text("paid with 4111 1111 1111 1111") == "paid with [CARD ****1111]"
    assert redact_text("paid with 4111-1111-1111-1111 today") == "paid with [CARD ****1111] today"
    assert redact_text("Authorization: BEARER abcdefghijk") == f"Authorization: BEARER {REDACTED}"
    assert redact({"note": "card 4111 1111 1111 1111"}) == {"note": "card [CARD ****1111]"}


def test_text_seen_clean_stays_clean_and_secrets_are_never_remembered() -> None:
    user_id = "12345678-1234-4234-9234-123456789012"
    assert redact_text(user_id) == redact_text(user_id)
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    for _ in range(2):
        assert redact_text(f"token {jwt}") == f"token {REDACTED}"
    from observability.redaction import _clean

    assert not any(jwt in text for text in _clean)
