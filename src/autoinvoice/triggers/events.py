"""Incoming events: parsed and validated, every bad field named, then turned into domain data.

JSON is decoded with ``parse_float=Decimal`` so hours, distances and quantities never pass
through binary floats. Unknown extra fields are kept in the stored payload but ignored here.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from autoinvoice.domain import job as d
from autoinvoice.validation import InputError, problems_from, reject_float

Dec = Annotated[Decimal, BeforeValidator(reject_float)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


class EventType(StrEnum):
    JOB_COMPLETED = "job.completed"
    JOB_SIGNED = "job.signed"
    WORK_ORDER_FINALIZED = "work_order.finalized"


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class AddressIn(_M):
    line1: NonEmpty
    city: NonEmpty
    country: str = Field(pattern=r"^[A-Z]{2}$")
    postal_code: str = ""
    region: str = ""
    line2: str = ""

    def domain(self) -> d.Address:
        return d.Address(**self.model_dump())


class CustomerIn(_M):
    id: NonEmpty
    name: NonEmpty
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    billing_address: AddressIn
    vat_id: str | None = None
    tax_exempt_certificate: str | None = None

    def domain(self) -> d.Customer:
        return d.Customer(
            id=self.id, name=self.name, email=self.email,
            billing_address=self.billing_address.domain(), vat_id=self.vat_id,
            tax_exempt_certificate=self.tax_exempt_certificate,
        )


class SiteIn(_M):
    id: NonEmpty
    name: NonEmpty
    address: AddressIn


class AssetIn(_M):
    type: NonEmpty
    make: NonEmpty
    model: NonEmpty
    serial: NonEmpty
    running_hours: int | None = Field(default=None, ge=0)


class TechnicianIn(_M):
    id: NonEmpty
    name: NonEmpty
    grade: NonEmpty


class LaborIn(_M):
    technician: NonEmpty
    kind: d.LaborKind
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    hours: Dec | None = Field(default=None, gt=0, le=24)

    @model_validator(mode="after")
    def _span_or_hours(self) -> LaborIn:
        has_span = self.start is not None or self.end is not None
        if has_span and self.hours is not None:
            raise ValueError("give either start/end or hours, not both")
        if not has_span and self.hours is None:
            raise ValueError("needs start and end, or hours")
        if has_span:
            if self.start is None or self.end is None:
                raise ValueError("start and end must both be given")
            if self.end <= self.start:
                raise ValueError("end must be after start")
            if (self.end - self.start).total_seconds() > 24 * 3600:
                raise ValueError("a single entry cannot exceed 24 hours")
        return self


class PartIn(_M):
    sku: NonEmpty
    description: str = ""
    quantity: Dec = Field(gt=0)
    unit: str = "ea"
    unit_cost: Dec | None = Field(default=None, ge=0)  # what a non-catalogue part cost us
    unit_price: Dec | None = Field(default=None, ge=0)  # an agreed price (e.g. set in review)


class MileageIn(_M):
    distance: Dec = Field(ge=0)
    unit: Literal["mi", "km"]


class SignatureIn(_M):
    signer_name: NonEmpty
    signed_at: AwareDatetime
    method: str = "on_device"
    signer_role: str | None = None
    image_png_base64: str | None = Field(default=None, max_length=2_000_000)

    def domain(self) -> d.Signature:
        return d.Signature(**self.model_dump())


class JobIn(_M):
    id: NonEmpty
    service_type: NonEmpty
    customer: CustomerIn
    completed_at: AwareDatetime
    summary: str = ""
    site: SiteIn | None = None
    asset: AssetIn | None = None
    technicians: list[TechnicianIn] = Field(min_length=1)
    labor: list[LaborIn] = Field(default_factory=list)
    parts: list[PartIn] = Field(default_factory=list)
    mileage: MileageIn | None = None
    po_number: str | None = None
    contract_id: str | None = None
    not_to_exceed: Dec | None = Field(default=None, gt=0)
    completed_by: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _labor_names_a_technician(self) -> JobIn:
        known = {t.id for t in self.technicians}
        unknown = sorted({e.technician for e in self.labor} - known)
        if unknown:
            raise ValueError(f"labor names technician(s) {unknown} not listed in technicians")
        return self

    def domain(self, signature: d.Signature | None = None) -> d.Job:
        return d.Job(
            id=self.id, service_type=self.service_type, customer=self.customer.domain(),
            completed_at=self.completed_at, summary=self.summary,
            site=d.Site(self.site.id, self.site.name, self.site.address.domain())
            if self.site else None,
            asset=d.Asset(**self.asset.model_dump()) if self.asset else None,
            technicians=tuple(d.Technician(**t.model_dump()) for t in self.technicians),
            labor=tuple(d.LaborEntry(**e.model_dump()) for e in self.labor),
            parts=tuple(d.PartUsage(**p.model_dump()) for p in self.parts),
            mileage=d.Mileage(self.mileage.distance, self.mileage.unit) if self.mileage else None,
            po_number=self.po_number or None, contract_id=self.contract_id,
            not_to_exceed=self.not_to_exceed, completed_by=self.completed_by, notes=self.notes,
            signature=signature,
        )


class _Envelope(_M):
    event_id: NonEmpty
    occurred_at: AwareDatetime
    tenant: NonEmpty


class JobCompleted(_Envelope):
    type: Literal["job.completed", "work_order.finalized"]
    job: JobIn

    @property
    def job_id(self) -> str:
        return self.job.id


class JobSigned(_Envelope):
    type: Literal["job.signed"]
    job_id: NonEmpty
    signature: SignatureIn


Event = Annotated[JobCompleted | JobSigned, Field(discriminator="type")]
_EVENT = TypeAdapter(Event)


def decode_json(text: str | bytes, source: str = "event") -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError([f"(body): not valid JSON ({exc})"], source=source) from None


def parse_event(data: Any, source: str = "event") -> JobCompleted | JobSigned:
    """A validated event, or ``InputError`` listing every bad field."""
    if not isinstance(data, dict):
        raise InputError(["(body): must be a JSON object"], source=source)
    if data.get("type") not in {t.value for t in EventType}:
        known = ", ".join(t.value for t in EventType)
        problems = [f"type: must be one of {known} (got {data.get('type')!r})"]
        try:
            _Envelope.model_validate(data)
        except ValidationError as exc:
            problems = problems_from(exc) + problems
        raise InputError(problems, source=source)
    try:
        event: JobCompleted | JobSigned = _EVENT.validate_python(data)
    except ValidationError as exc:
        _raise_named(exc, data, source)
    return event


def _raise_named(exc: ValidationError, data: dict[str, Any], source: str) -> NoReturn:
    # pydantic prefixes discriminated-union errors with the tag; drop it from the path.
    problems = [p.removeprefix(f"{data['type']}.") for p in problems_from(exc)]
    raise InputError(problems, source=source)


def event_time(event: JobCompleted | JobSigned) -> datetime:
    return event.occurred_at
