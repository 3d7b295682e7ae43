"""The one error tree every connector maps its vendor's errors into.

    ConnectorError                 anything a platform call can raise
    ├── TransientError             worth retrying later (network, 5xx, lock timeouts)
    │   └── RateLimited            429; ``retry_after`` seconds when the platform said so
    ├── PermanentError             retrying the same request will not help
    │   └── ValidationRejected     the platform rejected our payload (400/422)
    ├── AuthError                  401/403: credentials missing, wrong or expired
    └── NotFound                   404: the remote object does not exist
    ConnectorUnavailable           no connector exists yet for the tenant's platform

The pipeline decides retry / hold / fail by type alone. Each error keeps the platform, the HTTP
status, the vendor's own code and message and the request id, so an operator can quote them.
"""

from __future__ import annotations


class ConnectorError(Exception):
    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.platform}: {self.message}" if self.platform else self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        if self.request_id:
            parts.append(f"request {self.request_id}")
        return " | ".join(parts)


class TransientError(ConnectorError):
    pass


class RateLimited(TransientError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    pass


class ValidationRejected(PermanentError):
    pass


class AuthError(ConnectorError):
    pass


class NotFound(ConnectorError):
    pass


class ConnectorUnavailable(PermanentError):
    pass


def class_for_status(status: int) -> type[ConnectorError]:
    """What an HTTP status usually means; a connector's mapper handles only its vendor's
    exceptions (e.g. Stripe's 409 lock timeout) and defers to this for the rest."""
    if status == 429:
        return RateLimited
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if status in (400, 422):
        return ValidationRejected
    if status == 408 or status >= 500:
        return TransientError
    return PermanentError  # 409 and other 4xx: the same request again cannot succeed
