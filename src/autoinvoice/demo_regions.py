"""The demo's companies where a ledger is sold in one region only.

MYOB Business is sold in Australia and New Zealand, and its stand-in is an Australian company
file with Australian tax codes only (``sandbox.myob``): the demo bills it as an Australian
service company would. ``localise`` moves the US demo company to Melbourne (AUD, an ABN, GST
10 % on labour and parts, its clients in Victoria) and leaves the German company out, which
would not keep its books on MYOB; ``localise_events`` moves the jobs with it. Every other
platform runs the demo unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from autoinvoice.billing.rules import TaxRegime
from autoinvoice.config import Config, TenantConfig

Event = dict[str, Any]
AU_TENANT = "northwind"
_AU_ADDRESS = {"line1": "410 Swanston St", "city": "Melbourne", "region": "VIC",
               "postal_code": "3000", "country": "AU"}
_AU_CITIES = (("Dandenong", "3175"), ("Geelong", "3220"), ("Ballarat", "3350"))


def localise(config: Config, platform: str) -> Config:
    """The demo configuration for ``platform``: unchanged unless it is sold in one region."""
    move = _REGIONS.get(platform)
    if move is None:
        return config
    tenants = {name: move(t) for name, t in config.tenants.items() if name == AU_TENANT}
    return config.model_copy(update={"tenants": tenants})


def localise_events(events: list[Event], platform: str) -> list[Event]:
    if platform not in _REGIONS:
        return events
    return [_australian_event(e) for e in events if e.get("tenant") == AU_TENANT]


def _australian_tenant(tenant: TenantConfig) -> TenantConfig:
    customers = {cid: c.model_copy(update={
        "address": None if c.address is None else c.address.model_copy(
            update=_au_address(cid)),
        "exemption_certificates": ()}) for cid, c in tenant.customers.items()}
    tax = tenant.tax.model_copy(update={"regime": TaxRegime.VAT, "rate": Decimal("0.1"),
                                        "labor_taxable": True, "parts_taxable": True,
                                        "jurisdictions": {}})
    return tenant.model_copy(update={
        "legal_name": "Northwind Compressed Air Services Pty Ltd",
        "address": tenant.address.model_copy(update=_AU_ADDRESS),
        "tax_id": "51824753556", "currency": "AUD", "timezone": "Australia/Melbourne",
        "tax": tax, "customers": customers})


def _au_address(key: str) -> dict[str, str | None]:
    city, postcode = _AU_CITIES[sum(map(ord, key)) % len(_AU_CITIES)]
    return {"city": city, "postal_code": postcode, "region": "VIC", "country": "AU"}


def _australian_event(event: Event) -> Event:
    moved = copy.deepcopy(event)
    job = moved.get("job")
    if not isinstance(job, dict):
        return moved
    customer = job.get("customer") or {}
    for holder in (customer, job.get("site") or {}):
        address = holder.get("billing_address") or holder.get("address")
        if isinstance(address, dict):
            address.update(_au_address(str(customer.get("id", ""))))
    if isinstance(job.get("mileage"), dict):
        job["mileage"]["unit"] = "km"
    return moved


_REGIONS: dict[str, Callable[[TenantConfig], TenantConfig]] = {"myob": _australian_tenant}
