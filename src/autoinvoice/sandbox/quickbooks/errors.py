"""QuickBooks' faults as the stand-in answers them, and the checks that raise them."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]
CENT = Decimal("0.01")


class QboError(Exception):
    """A Fault QuickBooks would answer: ``{"Fault": {"Error": [...], "type": ...}}``."""

    def __init__(self, status: int, message: str, detail: str, code: str,
                 element: str = "", fault_type: str = "ValidationFault") -> None:
        super().__init__(detail)
        self.status, self.message, self.detail = status, message, detail
        self.code, self.element, self.fault_type = code, element, fault_type

    def body(self, now: str) -> Obj:
        return {"Fault": {"Error": [{"Message": self.message, "Detail": self.detail,
                                     "code": self.code, "element": self.element}],
                          "type": self.fault_type}, "time": now}


def invalid(detail: str, element: str = "") -> QboError:
    return QboError(400, "Request has invalid or unsupported property", detail, "2010", element)


def required(element: str) -> QboError:
    return QboError(400, "Required param missing, need to supply the required value for the "
                    "API", f"Required parameter {element} is missing in the request", "2020",
                    element)


def not_found(entity: str, obj_id: str) -> QboError:
    return QboError(400, "Object Not Found", f"Object Not Found : Something you're trying to "
                    f"use has been made inactive. Check the fields with accounts, customers, "
                    f"items, vendors or employees. ({entity} {obj_id})", "610")


def decimal(value: Any, element: str) -> Decimal:
    """An ``xs:decimal`` element's value: a JSON number (parsed as Decimal), not a string."""
    if isinstance(value, str):
        raise invalid(f"Property Name:Can not construct instance of java.math.BigDecimal from "
                      f"String value '{value}' ({element}) specified is unsupported or "
                      "invalid", element)
    if isinstance(value, bool):
        raise invalid(f"Property Name:{element} specified is unsupported or invalid", element)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(f"Property Name:{element} specified is unsupported or invalid",
                      element) from None
    if not number.is_finite():
        raise invalid(f"Property Name:{element} specified is unsupported or invalid", element)
    return number


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
