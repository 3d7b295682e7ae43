"""Stripe's error body: ``{"error": {type, code, message, param, doc_url, request_log_url}}``."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered in Stripe's shape. ``saved``: execution had begun, so the result is
    kept under the idempotency key (validation errors are not)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, saved: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.saved = code, param, saved

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message, "type": self.type,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}"}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(kind: str, object_id: str, param: str | None = None) -> StripeError:
    status = 400 if param else 404
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing",
                       param=param or "id")


def invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid_string", param=param)
