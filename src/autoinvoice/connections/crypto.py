"""Token sets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key comes from ``AUTOINVOICE_SECRET_KEY``: a urlsafe-base64 32-byte Fernet key, made with
``autoinvoice connections --new-key`` (or ``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``). Several keys separated by commas rotate the key:
the first encrypts, every one decrypts (``MultiFernet``), so a new key goes in front and the
old one stays until every connection has been refreshed or reconnected.

The encrypted payload names its tenant and platform, so a row copied onto another
connection is refused rather than used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from autoinvoice.validation import InputError

ENV_KEY = "AUTOINVOICE_SECRET_KEY"


class SecretKeyError(InputError):
    """The key is missing, malformed, or not the one the tokens were encrypted with."""

    def __init__(self, message: str) -> None:
        super().__init__([message], source=ENV_KEY)


def new_key() -> str:
    return Fernet.generate_key().decode()


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(f"{ENV_KEY} is not a Fernet key (32 urlsafe-base64 bytes; "
                                 "make one with `autoinvoice connections --new-key`)") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenCipher:
        raw = (os.environ if environ is None else environ).get(ENV_KEY, "").strip()
        if not raw:
            raise SecretKeyError(f"{ENV_KEY} is not set: OAuth tokens are stored encrypted "
                                 "with it (make one with `autoinvoice connections --new-key`)")
        return cls([k for k in raw.split(",") if k.strip()])

    def encrypt(self, tenant: str, platform: str, data: Mapping[str, Any]) -> str:
        payload = {"tenant": tenant, "platform": platform, "data": dict(data)}
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def decrypt(self, tenant: str, platform: str, token: str) -> dict[str, Any]:
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretKeyError(f"the stored {platform} tokens of tenant {tenant} cannot be "
                                 f"decrypted with {ENV_KEY} (was the key changed?)") from None
        if (payload.get("tenant"), payload.get("platform")) != (tenant, platform):
            raise SecretKeyError(f"the stored {platform} tokens of tenant {tenant} belong to "
                                 "another connection")
        data: dict[str, Any] = payload["data"]
        return data
