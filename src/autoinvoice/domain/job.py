"""A finished service job, as the field-service side reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    country: str
    postal_code: str = ""
    region: str = ""
    line2: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    email: str
    billing_address: Address
    vat_id: str | None = None
    tax_exempt_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class Asset:
    type: str
    make: str
    model: str
    serial: str
    running_hours: int | None = None


@dataclass(frozen=True, slots=True)
class Technician:
    id: str
    name: str
    grade: str


class LaborKind(StrEnum):
    ONSITE = "onsite"
    TRAVEL = "travel"


@dataclass(frozen=True, slots=True)
class LaborEntry:
    """Time worked: either a start/end span (timezone-aware) or plain ``hours``."""

    technician: str
    kind: LaborKind
    start: datetime | None = None
    end: datetime | None = None
    hours: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PartUsage:
    sku: str
    description: str
    quantity: Decimal
    unit: str = "ea"
    unit_cost: Decimal | None = None  # our cost, for parts not in the pricebook
    unit_price: Decimal | None = None  # an agreed price that overrides every list


@dataclass(frozen=True, slots=True)
class Mileage:
    distance: Decimal
    unit: str


@dataclass(frozen=True, slots=True)
class Signature:
    signer_name: str
    signed_at: datetime
    method: str
    signer_role: str | None = None
    image_png_base64: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    service_type: str
    customer: Customer
    completed_at: datetime
    summary: str = ""
    site: Site | None = None
    asset: Asset | None = None
    technicians: tuple[Technician, ...] = ()
    labor: tuple[LaborEntry, ...] = ()
    parts: tuple[PartUsage, ...] = ()
    mileage: Mileage | None = None
    po_number: str | None = None
    contract_id: str | None = None
    not_to_exceed: Decimal | None = None  # the client's limit for this job, in our currency
    completed_by: str | None = None
    notes: str | None = None
    signature: Signature | None = field(default=None)

    def technician(self, technician_id: str) -> Technician | None:
        return next((t for t in self.technicians if t.id == technician_id), None)
