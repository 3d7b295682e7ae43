"""Verifying and parsing Stripe webhook deliveries.

Stripe signs every delivery with the endpoint's secret and sends the result in the
``Stripe-Signature`` header: ``t=<unix seconds>,v1=<hex>[,v1=<hex>…]`` (other schemes such as
``v0`` may appear and are ignored). The signed payload is ``f"{t}."`` followed by the raw request
body, exactly as received; the signature is the hex HMAC-SHA256 of it keyed with the secret.
While a secret is being rolled Stripe sends one ``v1`` entry per active secret, so a delivery is
genuine when *any* entry matches. The timestamp is part of the signed payload, which is what
makes the tolerance window a defence against replays.

Sources, checked when this was written:

- Stripe, "Verify the events that Stripe sends to your webhook endpoint / verify manually"
  (https://docs.stripe.com/webhooks#verify-manually): header layout, signed payload
  ``{t}.{body}``, HMAC-SHA256, constant-time comparison, several ``v1`` entries during secret
  rotation, and the SDKs' default tolerance of five minutes.
- stripe-python ``stripe/_webhook.py`` (``WebhookSignature.verify_header``,
  ``_compute_signature``, ``generate_signature_header``; ``Webhook.DEFAULT_TOLERANCE = 300``),
  read at commit 016aa9f02f53201066cb188437fd00605724b365 and as installed (stripe 16.1).

Where we differ from stripe-python, on purpose:

- The HMAC is taken over the raw bytes (the SDK decodes them as UTF-8 first; same result for
  the UTF-8 bodies Stripe sends, and we never depend on a decode).
- A timestamp too far in the *future* is rejected as well: the SDK only rejects stale ones,
  but a future ``t`` only ever comes from a wrong clock or a forgery, and accepting it would
  stretch the replay window.
- ``now`` is a parameter, so the check is deterministic and testable; nothing reads the clock.
- The signature is checked before the timestamp (as the SDK does), so "stale" is only ever
  reported for a delivery that Stripe really signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SCHEME = "v1"
DEFAULT_TOLERANCE = 300


class SignatureProblem(StrEnum):
    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    NO_V1_SIGNATURE = "no_v1_signature"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    NO_MATCHING_SIGNATURE = "no_matching_signature"


class WebhookSignatureError(Exception):
    """The delivery cannot be trusted; ``reason`` says why (answer it with HTTP 400)."""

    def __init__(self, reason: SignatureProblem, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason


class WebhookPayloadError(ValueError):
    """A verified body that is not a Stripe event (bad JSON or missing fields)."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: int
    object: dict[str, Any]


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``b"{timestamp}." + payload`` keyed with ``secret``."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe_signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe would send for ``payload`` (stand-ins, tests)."""
    return f"t={timestamp},{SCHEME}={compute_signature(payload, secret, timestamp)}"


def verify_stripe_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Raise ``WebhookSignatureError`` unless ``header`` proves Stripe sent ``payload`` recently.

    ``payload`` must be the raw body as received (never re-serialised JSON); ``now`` is the
    current Unix time; ``tolerance`` is how far, in seconds, ``t`` may be from ``now`` either way.
    """
    if not header or not header.strip():
        raise WebhookSignatureError(SignatureProblem.MISSING_HEADER)
    timestamp, signatures = _parse_header(header)
    if not signatures:
        raise WebhookSignatureError(SignatureProblem.NO_V1_SIGNATURE)
    expected = compute_signature(payload, secret, timestamp)
    # Compare against every entry, without stopping early, so timing says nothing of which.
    matches = [hmac.compare_digest(expected.encode(), sig.encode()) for sig in signatures]
    if not any(matches):
        raise WebhookSignatureError(SignatureProblem.NO_MATCHING_SIGNATURE)
    if timestamp < now - tolerance:
        raise WebhookSignatureError(
            SignatureProblem.TIMESTAMP_TOO_OLD, f"t={timestamp} is {now - timestamp:.0f}s old"
        )
    if timestamp > now + tolerance:
        raise WebhookSignatureError(
            SignatureProblem.TIMESTAMP_IN_FUTURE, f"t={timestamp} is {timestamp - now:.0f}s ahead"
        )


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise WebhookSignatureError(SignatureProblem.MALFORMED_HEADER, f"element {item!r}")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise WebhookSignatureError(SignatureProblem.MALFORMED_HEADER, "needs exactly one t=<int>")
    return int(timestamps[0]), signatures


def parse_stripe_event(payload: bytes) -> StripeEvent:
    """The event in a (verified) body: ``id``, ``type``, ``created`` and ``data.object``."""
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WebhookPayloadError("body is not a JSON object")
    data = raw.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type, created = raw.get("id"), raw.get("type"), raw.get("created")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise WebhookPayloadError("event needs string 'id' and 'type'")
    if not isinstance(created, int) or isinstance(created, bool):
        raise WebhookPayloadError("event needs an integer 'created'")
    if not isinstance(obj, dict):
        raise WebhookPayloadError("event needs an object at data.object")
    return StripeEvent(id=event_id, type=event_type, created=created, object=obj)
