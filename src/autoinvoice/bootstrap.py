"""The composition root: config in, store, connectors, clock and mailer out. Nothing in the
package does work at import time; everything is built here, and tests call the same function
with their own clock and HTTP transports."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from autoinvoice.billing.rules import BillingRules
from autoinvoice.config import Config, PlatformConfig, SmtpConfig, billing_rules, tenant_snapshot
from autoinvoice.connections.tokens import DbTokenSource
from autoinvoice.connectors.base import Connector, ConnectorSettings
from autoinvoice.connectors.oauth import oauth_platform
from autoinvoice.connectors.registry import CONNECTORS, build_connector, rounding_problems
from autoinvoice.connectors.timer import Timer
from autoinvoice.ledger_setup import tax_code_problems
from autoinvoice.store import repo
from autoinvoice.store.db import make_engine, migrate, session_factory
from autoinvoice.validation import InputError

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = utcnow
    #: per-tenant httpx transports (tests and preview point connectors at in-process stand-ins)
    transports: dict[str, Any] = field(default_factory=dict)
    timer: Timer | None = None
    _connectors: dict[str, Connector] = field(default_factory=dict)
    _rules: dict[str, BillingRules] = field(default_factory=dict)
    _versions: dict[str, tuple[str, str]] = field(default_factory=dict)
    _stored_versions: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rules(self, tenant: str) -> BillingRules:
        if tenant not in self._rules:
            self._rules[tenant] = billing_rules(self.config.tenant(tenant))
        return self._rules[tenant]

    def config_version(self, tenant: str) -> tuple[str, str]:
        """``(sha256, snapshot)`` of the tenant's configuration (see ``tenant_snapshot``)."""
        if tenant not in self._versions:
            snapshot = tenant_snapshot(self.config.tenant(tenant))
            self._versions[tenant] = (hashlib.sha256(snapshot.encode()).hexdigest(), snapshot)
        return self._versions[tenant]

    def remembered_config(self, session: Session, tenant: str, now: datetime) -> str:
        """The tenant's config version hash, its snapshot stored once (looked for once per
        process, not on every build)."""
        sha, snapshot = self.config_version(tenant)
        if sha not in self._stored_versions and repo.remember_config(
                session, tenant, (sha, snapshot), now):
            self._stored_versions.add(sha)  # found already stored (committed): stop looking
        return sha

    def connector(self, tenant: str) -> Connector:
        with self._lock:
            if tenant not in self._connectors:
                self._connectors[tenant] = build_connector(
                    self.config.tenant(tenant).platform.name, self.connector_settings(tenant))
            return self._connectors[tenant]

    def forget_connector(self, tenant: str) -> None:
        """Drop the tenant's connector (a new connection: the next use builds it afresh)."""
        with self._lock:
            self._connectors.pop(tenant, None)

    def connector_settings(self, tenant: str, **overrides: Any) -> ConnectorSettings:
        t = self.config.tenant(tenant)
        extra: dict[str, Any] = {"timer": self.timer} if self.timer is not None else {}
        if oauth_platform(t.platform.name) is not None:  # OAuth2: tokens from the store
            extra["tokens"] = DbTokenSource(self, tenant)
        return ConnectorSettings(
            tenant=tenant, currency=t.currency, base_url=t.platform.base_url,
            credentials=t.platform.credentials, transport=self.transports.get(tenant),
            rate_limit_per_second=float(t.platform.rate_limit_per_second)
            if t.platform.rate_limit_per_second else None,
            options=platform_options(t.platform), **{**extra, **overrides})

    def smtp(self, tenant: str) -> SmtpConfig:
        return self.config.smtp_for(tenant)

    def documents_dir(self, tenant: str) -> Path:
        return Path(self.config.documents_dir) / tenant


def platform_options(platform: PlatformConfig) -> dict[str, Any]:
    """The platform keys a connector reads beyond URL, credentials and rate (see
    ``ConnectorSettings.options``); unset ones are left out."""
    names = ("entra_tenant", "environment", "tax_groups", "tax_areas", "tax_rates", "tax_types",
             "tax_treatments")
    return {n: getattr(platform, n) for n in names if getattr(platform, n)}


def check_platform_fit(config: Config) -> None:
    """Settings that cannot work with the tenant's platform are refused at start (an unknown
    platform first: nothing else can be said of it)."""
    unknown = [f"tenants.{name}.platform.name: unknown platform {t.platform.name!r}; one of: "
               f"{', '.join(sorted(CONNECTORS))}" for name, t in config.tenants.items()
               if t.platform.name not in CONNECTORS]
    if unknown:
        raise InputError(unknown, source=config.source)
    problems = [p for name, t in config.tenants.items()
                for p in rounding_problems(t.platform.name, t.tax.rounding,
                                           f"tenants.{name}.tax.rounding")]
    problems += [p for name, t in config.tenants.items()
                 for p in tax_code_problems(t.platform, f"tenants.{name}.platform")]
    if problems:
        raise InputError(problems, source=config.source)


def check_documents(config: Config) -> None:
    """A tenant's own document templates and logo are checked at start, not at the first
    invoice: a broken one is refused, naming the file and the problem."""
    from PIL import Image, UnidentifiedImageError

    from autoinvoice.documents.pdf_check import check_templates

    problems = []
    for name, tenant in config.tenants.items():
        style, key = tenant.documents, f"tenants.{name}.documents"
        if style.template_dir is not None:
            problems += [f"{key}.template_dir: {p}"
                         for p in check_templates(style.template_dir, style.language)]
        if style.logo is not None:
            try:
                with Image.open(style.logo) as image:
                    image.verify()
                    if image.format not in ("PNG", "JPEG"):
                        problems.append(f"{key}.logo: {style.logo} is {image.format}, "
                                        "not PNG or JPEG")
            except (OSError, UnidentifiedImageError) as exc:
                problems.append(f"{key}.logo: cannot read {style.logo} as an image ({exc})")
    if problems:
        raise InputError(problems, source=config.source)


def bootstrap(config: Config, *, clock: Clock = utcnow, engine: Engine | None = None,
              transports: dict[str, Any] | None = None,
              timer: Timer | None = None) -> App:
    check_platform_fit(config)
    check_documents(config)
    engine = engine or make_engine(config.database.url)
    migrate(engine)
    return App(config=config, engine=engine, sessions=session_factory(engine), clock=clock,
               transports=transports or {}, timer=timer)
