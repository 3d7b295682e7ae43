"""``autoinvoice preview``: the invoice that would be built and the exact requests the
tenant's connector would send, found by running the real connector against an in-process
stand-in of its platform. Nothing leaves the machine; secrets are masked."""

from __future__ import annotations

from typing import Any

from autoinvoice.billing.engine import build_invoice
from autoinvoice.bootstrap import utcnow
from autoinvoice.config import Config, SecretRef, billing_rules
from autoinvoice.connectors.base import (
    ConnectorSettings,
    IdempotencyKeys,
    RecordedRequest,
)
from autoinvoice.connectors.errors import ConnectorUnavailable
from autoinvoice.connectors.registry import build_connector
from autoinvoice.sandbox.registry import (
    make_standin,
    standin_options,
    standin_tokens,
    standin_transport,
)
from autoinvoice.store.codec import to_jsonable
from autoinvoice.triggers.events import JobSigned, decode_json, parse_event
from autoinvoice.validation import InputError


def preview(config: Config, text: str, source: str, tenant: str | None = None) -> dict[str, Any]:
    event = parse_event(decode_json(text, source), source)
    if isinstance(event, JobSigned):
        raise InputError(["type: preview needs a job.completed or work_order.finalized event; "
                          "a job.signed event carries no job"], source=source)
    name = tenant or event.tenant
    tcfg = config.tenant(name)
    rules = billing_rules(tcfg)
    issue = utcnow().astimezone(rules.timezone).date()
    result = build_invoice(event.job.domain(), rules, tenant=name, revision=1, issue_date=issue)
    number = tcfg.invoice_series.format(year=issue.year, month=issue.month, seq=0)
    invoice = result.invoice.with_number(number)
    out: dict[str, Any] = {
        "tenant": name, "platform": tcfg.platform.name,
        "number_note": f"{number} stands for the next number of the series, assigned when sent",
        "holds": [{"code": p.code, "message": p.message} for p in result.problems],
        "invoice": _invoice_view(invoice),
    }
    out["requests"], out["requests_note"] = _requests(tcfg.platform.name, name, tcfg, invoice)
    return out


def _invoice_view(invoice: Any) -> dict[str, Any]:
    data = to_jsonable(invoice)
    return {"job_id": invoice.job_id, "number": invoice.number, "currency": invoice.currency,
            "customer": data["customer"], "issue_date": data["issue_date"],
            "due_date": data["due_date"], "lines": [
                {**line, "amount": line["amount"]["amount"], "tax": line["tax"]["amount"]}
                for line in data["lines"]],
            "subtotal": str(invoice.subtotal.amount), "tax": str(invoice.tax_total.amount),
            "total": str(invoice.total.amount), "flags": data["flags"]}


def _requests(platform: str, tenant: str, tcfg: Any, invoice: Any
              ) -> tuple[list[dict[str, Any]] | None, str]:
    credentials = {k: SecretRef(f"preview-{k}") for k in tcfg.platform.credentials}
    try:
        core = make_standin(platform, **({"api_key": credentials["api_key"].reveal()}
                                         if "api_key" in credentials else {}))
    except LookupError:
        return None, f"platform {platform!r} has no connector yet: no requests to show"
    if getattr(core, "oauth", None) is not None:  # the app's id at the stand-in (MYOB sends
        credentials["client_id"] = SecretRef(core.oauth.client_id)  # it as x-myobapi-key)
    recorded: list[RecordedRequest] = []
    settings = ConnectorSettings(
        tenant=tenant, currency=invoice.currency, base_url=tcfg.platform.base_url,
        credentials=credentials, transport=standin_transport(platform, core),
        recorder=recorded.append, tokens=standin_tokens(core, tcfg.address.country),
        options=standin_options(core, tcfg.address.country))
    try:
        connector = build_connector(platform, settings)
    except ConnectorUnavailable as exc:
        return None, str(exc)
    keys = IdempotencyKeys.derive(tenant, invoice.job_id, invoice.revision)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    note = ("responses came from an in-process stand-in; on the real platform the first "
            "look-ups may find existing objects and skip a create")
    return [{"method": r.method, "url": r.url, "headers": dict(r.headers), "body": r.body}
            for r in recorded], note
