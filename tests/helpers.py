"""Builders shared by tests: events and jobs in the shapes of ../shared/examples."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

EXAMPLE_EMERGENCY: dict[str, Any] = {
    "event_id": "evt-t-0001", "type": "job.completed",
    "occurred_at": "2026-11-20T21:47:00-06:00", "tenant": "northwind",
    "job": {
        "id": "WO-T-1", "service_type": "emergency_repair", "summary": "Tripped on high temp",
        "customer": {"id": "CUST-0088", "name": "Acme Plastics Inc.",
                     "email": "ap@acme-plastics.example",
                     "billing_address": {"line1": "1200 Industrial Pkwy", "city": "Tulsa",
                                         "region": "OK", "postal_code": "74107",
                                         "country": "US"}},
        "po_number": "PO-77813",
        "asset": {"type": "rotary_screw", "make": "Atlas Copco", "model": "GA37 VSD+",
                  "serial": "API726410", "running_hours": 16012},
        "technicians": [{"id": "T-07", "name": "R. Okafor", "grade": "senior"}],
        "labor": [
            {"technician": "T-07", "kind": "travel", "start": "2026-11-20T17:05:00-06:00",
             "end": "2026-11-20T17:50:00-06:00"},
            {"technician": "T-07", "kind": "onsite", "start": "2026-11-20T17:50:00-06:00",
             "end": "2026-11-20T21:35:00-06:00"},
        ],
        "parts": [
            {"sku": "1622-8757-00", "description": "Thermostatic valve kit", "quantity": 1,
             "unit": "ea"},
            {"sku": "1622-3637-80", "description": "Cooler fan motor 1.1 kW", "quantity": 1,
             "unit": "ea"},
            {"sku": "OIL-RIF-8K", "description": "Roto-Inject Fluid, 8000 h", "quantity": 5,
             "unit": "l"},
        ],
        "mileage": {"distance": Decimal("38.5"), "unit": "mi"},
        "completed_at": "2026-11-20T21:35:00-06:00", "completed_by": "T-07",
    },
}


def completed(job_id: str = "WO-T-1", event_id: str | None = None, tenant: str = "northwind",
              **job_changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(EXAMPLE_EMERGENCY)
    event["event_id"] = event_id or f"evt-{job_id}-done"
    event["tenant"] = tenant
    event["job"]["id"] = job_id
    event["job"].update(job_changes)
    return event


def signed(job_id: str = "WO-T-1", event_id: str | None = None, tenant: str = "northwind"
           ) -> dict[str, Any]:
    return {"event_id": event_id or f"evt-{job_id}-signed", "type": "job.signed",
            "occurred_at": "2026-11-20T21:40:00-06:00", "tenant": tenant, "job_id": job_id,
            "signature": {"signer_name": "Dana Reyes", "signer_role": "Maintenance lead",
                          "signed_at": "2026-11-20T21:39:00-06:00", "method": "on_device"}}


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, default=str)


def read_example(shared: Path, name: str) -> str:
    return (shared / "examples" / name).read_text(encoding="utf-8")


class VirtualTimer(list[float]):
    """A connector ``Timer`` whose clock moves only when it sleeps (or is ``advance``d).

    Every wait is recorded in order (the list itself), so a test can say exactly which waits
    happened; rate-limit waits computed from this clock do not depend on how busy the machine
    is. Hashable by identity, so the limiter registry keeps one bucket per timer.
    """

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
