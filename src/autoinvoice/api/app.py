"""The HTTP API: event intake (JSON events, work-order CSV), payment webhooks and read-only
invoice views.

Each tenant authenticates with ``Authorization: Bearer <api key>`` (keys from the config's
``api_keys``, usually ``env:`` references). Errors are JSON: ``{"error": ..., "problems": [...]}``
naming every bad field; nothing is stored for a rejected event.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from autoinvoice.bootstrap import App
from autoinvoice.payments.webhooks import WebhookRejected, handle_stripe
from autoinvoice.pipeline import views
from autoinvoice.pipeline.intake import accept
from autoinvoice.triggers.events import decode_json, parse_event
from autoinvoice.triggers.work_orders import event_json, parse_work_orders, tenant_defaults
from autoinvoice.validation import InputError

log = logging.getLogger("autoinvoice.api")
MAX_BODY = 5_000_000


def _tenant_keys(app: App) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for name, tenant in app.config.tenants.items():
        for ref in tenant.api_keys:
            try:
                keys.append((ref.reveal(), name))
            except InputError:
                log.warning("tenant %s: API key %r is not set; that key is disabled", name, ref)
    return keys


def create_app(app: App) -> FastAPI:
    api = FastAPI(title="autoinvoice", version="1")
    keys = _tenant_keys(app)

    def tenant_of(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
        # Compare against every key so the time taken does not reveal which one matched.
        found = [name for key, name in keys if hmac.compare_digest(key.encode(), token.encode())]
        if not found:
            raise HTTPException(401, "unknown API key", {"WWW-Authenticate": "Bearer"})
        return found[0]

    @api.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"error": "invalid input", "problems": exc.problems}, 422)

    @api.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @api.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/v1/events")
    async def post_event(request: Request) -> JSONResponse:
        tenant = tenant_of(request)
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"event larger than {MAX_BODY} bytes")
        text = body.decode("utf-8", errors="replace")
        event = parse_event(decode_json(body))
        if event.tenant != tenant:
            raise HTTPException(403, f"this API key belongs to tenant {tenant!r}, "
                                f"the event names {event.tenant!r}")
        result = accept(app, event, text, actor=f"api:{tenant}")
        return JSONResponse(result.as_dict(), 202 if result.status == "accepted" else 200)

    @api.post("/v1/work-orders")
    async def post_work_orders(request: Request, tenant: str | None = None) -> JSONResponse:
        """A work-order CSV (``text/csv``) of the key's tenant: every job or, on a bad row,
        none (422 naming line and column)."""
        own = tenant_of(request)
        if tenant is not None and tenant != own:
            raise HTTPException(403, f"this API key belongs to tenant {own!r}, not {tenant!r}")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
            raise HTTPException(415, "send the work orders as text/csv")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"work orders larger than {MAX_BODY} bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(["(body): not UTF-8 text"], source="work orders") from None
        events = parse_work_orders(text, tenant=own, source="work orders",
                                   **tenant_defaults(app.config.tenant(own)))
        results = [accept(app, parse_event(e), event_json(e), actor=f"api:{own}").as_dict()
                   for e in events]
        accepted = any(r["status"] == "accepted" for r in results)
        return JSONResponse({"results": results}, 202 if accepted else 200)

    @api.post("/v1/webhooks/stripe/{tenant}")
    async def stripe_webhook(tenant: str, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            outcome = handle_stripe(app, tenant, body, request.headers.get("stripe-signature"))
        except WebhookRejected as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"status": outcome.status, "detail": outcome.detail}, 200)

    @api.get("/v1/invoices")
    def list_invoices(request: Request, state: str | None = None) -> list[dict[str, object]]:
        tenant = tenant_of(request)
        with app.sessions() as session:
            return [views.summary(r) for r in views.list_rows(session, tenant, state)]

    @api.get("/v1/invoices/{job_id}")
    def show_invoice(job_id: str, request: Request) -> dict[str, object]:
        tenant = tenant_of(request)
        with app.sessions() as session:
            rows = views.find_job(session, job_id, tenant)
            if not rows:
                raise HTTPException(404, f"no invoice for job {job_id!r}")
            return views.job_detail(session, rows[0])

    return api
