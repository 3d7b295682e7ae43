"""The demo's day of work: the shared example events and work-order CSV (when ../shared is
beside the checkout) and a generated, reproducible day of realistic compressor jobs for both
demo tenants."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoinvoice.config import Config
from autoinvoice.triggers.work_orders import parse_work_orders, tenant_defaults

CUSTOMERS_US = [
    ("CUST-0088", "Acme Plastics Inc.", "ap@acme-plastics.example", "Tulsa", "74107"),
    ("CUST-0102", "Tulsa Precision Castings LLC", "payables@tpc.example", "Tulsa", "74115"),
    ("CUST-0131", "Red Fork Brewing Co.", "accounts@redforkbrew.example", "Tulsa", "74107"),
    ("CUST-0147", "Saint Francis Medical Center", "ap@sfmc.example", "Tulsa", "74136"),
    ("CUST-0160", "Broken Arrow Food Packaging", "invoices@bafp.example", "Broken Arrow", "74012"),
]
CUSTOMERS_DE = [
    ("K-1042", "Brauerei Feldmann GmbH", "rechnung@feldmann-brauerei.example", "Bamberg", "96047",
     "DE811907980"),
    ("K-1107", "Klinikum Fürth gGmbH", "kreditoren@klinikum-fuerth.example", "Fürth", "90766",
     "DE813346821"),
    ("K-1150", "Metallbau Schäfer KG", "buchhaltung@schaefer-metall.example", "Erlangen", "91052",
     "DE265819203"),
]
ASSETS = [
    ("rotary_screw", "Atlas Copco", "GA37 VSD+"), ("rotary_screw", "Ingersoll Rand", "R55n"),
    ("oil_free_screw", "Kaeser", "CSG 90-2"), ("reciprocating", "Quincy", "QR-25 5 hp"),
    ("rotary_screw", "Sullair", "LS110"),
]
TECHS_US = [("T-07", "R. Okafor", "senior"), ("T-11", "J. Whitfield", "technician"),
            ("T-03", "A. Nguyen", "engineer")]
TECHS_DE = [("T-21", "M. Becker", "technician"), ("T-24", "S. Yilmaz", "senior")]
PARTS_US = ["1622-8757-00", "1622-3637-80", "OIL-RIF-8K", "2901-0544-00", "1613-7408-00",
            "1202-6243-00", "39911615", "92740950"]
PARTS_DE = ["6.4149.0", "6.3465.0", "9.0915.1", "7.7010.0"]
SERVICES = ["preventive_maintenance", "repair", "emergency_repair", "inspection"]


def _shared_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd().parent / "shared" / "examples", Path.cwd() / "shared" / "examples",
            here.parents[3] / "shared" / "examples"]


def shared_examples() -> list[dict[str, Any]]:
    """The example events from ../shared/examples, read in place (never copied)."""
    for folder in _shared_dirs():
        if folder.is_dir():
            return [json.loads(p.read_text("utf-8"), parse_float=Decimal)
                    for p in sorted(folder.glob("*.json"))]
    return []


def shared_work_orders(config: Config, tenant: str = "northwind") -> list[dict[str, Any]]:
    """The work orders of ../shared/examples/work-order-finalized.csv (the US company's
    export), as ``work_order.finalized`` events, read in place."""
    for folder in _shared_dirs():
        path = folder / "work-order-finalized.csv"
        if path.is_file():
            return parse_work_orders(path.read_text("utf-8"), tenant=tenant, source=str(path),
                                     **tenant_defaults(config.tenant(tenant)))
    return []


def _stamp(day: str, minutes: int, offset: str) -> str:
    return f"{day}T{minutes // 60:02d}:{minutes % 60:02d}:00{offset}"


def _po(n: int, customer_id: str) -> str | None:
    """Half the jobs carry a PO; Acme requires one (demo config), and its first job of the
    day arrives without it: held for review (``po_required``)."""
    return f"PO-{4400 + n}" if n % 2 or (customer_id == "CUST-0088" and n) else None


def _job(rng: random.Random, n: int, tenant: str) -> list[dict[str, Any]]:
    us = tenant == "northwind"
    day, offset = ("2026-11-23", "-06:00") if us else ("2026-11-23", "+01:00")
    cust = rng.choice(CUSTOMERS_US if us else CUSTOMERS_DE)
    tech = rng.choice(TECHS_US if us else TECHS_DE)
    kind, make, model = rng.choice(ASSETS)
    service = rng.choice(SERVICES)
    start = rng.choice([7 * 60 + 30, 9 * 60, 11 * 60, 13 * 60 + 15, 15 * 60 + 40, 18 * 60])
    travel = rng.choice([20, 35, 50])
    onsite = rng.choice([45, 90, 150, 200, 260])
    job_id = f"{'WO' if us else 'AU'}-{20500 + n}"
    parts = [{"sku": sku, "description": "", "quantity": rng.choice([1, 1, 2]),
              "unit": "l" if sku == "OIL-RIF-8K" else "ea"}
             for sku in rng.sample(PARTS_US if us else PARTS_DE, rng.randint(0, 3))]
    if n == 7 and us:  # one job uses a part nobody priced: held for review, not guessed
        parts.append({"sku": "CUST-FAB-01", "description": "Custom bracket, fabricated",
                      "quantity": 1, "unit": "ea"})
    address = {"line1": f"{100 + n} Industrial Rd", "city": cust[3], "postal_code": cust[4],
               "country": "US" if us else "DE", **({"region": "OK"} if us else {})}
    customer: dict[str, Any] = {"id": cust[0], "name": cust[1], "email": cust[2],
                                "billing_address": address}
    if not us:
        customer["vat_id"] = cust[5]
    end = start + travel + onsite
    job = {
        "id": job_id, "service_type": service, "summary": f"{service.replace('_', ' ')} on "
        f"{make} {model}", "customer": customer, "po_number": _po(n, cust[0]),
        "site": {"id": f"S-{cust[0]}", "name": f"{cust[1]} plant", "address": address},
        "asset": {"type": kind, "make": make, "model": model,
                  "serial": f"SN{rng.randint(10**6, 10**7)}",
                  "running_hours": rng.randint(2000, 60000)},
        "technicians": [{"id": tech[0], "name": tech[1], "grade": tech[2]}],
        "labor": [
            {"technician": tech[0], "kind": "travel", "start": _stamp(day, start, offset),
             "end": _stamp(day, start + travel, offset)},
            {"technician": tech[0], "kind": "onsite", "start": _stamp(day, start + travel, offset),
             "end": _stamp(day, end, offset)},
        ],
        "parts": parts,
        "mileage": {"distance": Decimal(rng.randint(80, 900)) / 10, "unit": "mi" if us else "km"},
        "completed_at": _stamp(day, end, offset), "completed_by": tech[0],
    }
    done = {"event_id": f"evt-demo-{job_id}-done", "type": "job.completed", "tenant": tenant,
            "occurred_at": _stamp(day, min(end + 2, 23 * 60 + 59), offset), "job": job}
    if n % 6 == 5:  # the client did not sign on the device: invoiced unsigned after the wait
        return [done]
    sign = {"event_id": f"evt-demo-{job_id}-signed", "type": "job.signed", "tenant": tenant,
            "job_id": job_id, "occurred_at": _stamp(day, min(end + 3, 23 * 60 + 59), offset),
            "signature": {"signer_name": f"{cust[1].split()[0]} site contact",
                          "signer_role": "Maintenance", "method": "on_device",
                          "signed_at": _stamp(day, min(end + 3, 23 * 60 + 59), offset)}}
    return [sign, done] if n % 4 == 0 else [done, sign]  # some signatures arrive first


def day_of_jobs(count_us: int = 16, count_de: int = 6, seed: int = 2026) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(count_us):
        events += _job(rng, n, "northwind")
    for n in range(count_de):
        events += _job(rng, 100 + n, "kompressor-service-de")
    return events
