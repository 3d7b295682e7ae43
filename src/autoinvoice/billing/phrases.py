"""The words the billing engine writes onto an invoice (line descriptions, coverage reasons,
contract and tax notes), in the tenant's document language (``documents.language``).

Pure data: the engine asks ``phrase(language, key, **values)``; an unknown language falls
back to English. The PDF's own labels live in ``documents/templates``; these are the words
that become invoice data, so the e-invoice carries the same text as the PDF.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["factor_text", "phrase"]

_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "onsite": "On-site labor",
        "travel": "Travel",
        "labor_line": "{what} - {name} ({grade}{extra})",
        "window": ", {window} x{factor}",
        "travel_factor": ", travel x{factor}",
        "window.overtime": "overtime",
        "window.weekend": "weekend",
        "window.holiday": "holiday",
        "minimum": "Minimum on-site charge: top-up from {onsite} h to {minimum} h",
        "callout": "Emergency call-out fee",
        "mileage": "Mileage ({distance} {unit})",
        "included_in": "included in {service}",
        "kit_part": "part of kit {sku}",
        "non_catalogue": "{description} (non-catalogue)",
        "warranty": "warranty ({contract})",
        "covered": "covered by contract {contract}",
        "callout_waived": "waived under contract {contract}",
        "discount": "contract {contract}: {percent} off",
        "warranty_claim": "Warranty claim under {contract}: work for {customer}, {site}",
        "warranty_note": "Warranty {contract}",
        "contract_note": "Maintenance contract {contract}",
        "exempt_from_vat": "Exempt from VAT",
        "exempt_certificate": "Exempt: resale/exemption certificate {number}",
        "outside_scope": ("Outside the scope of {home} VAT: place of supply is the customer's "
                          "country"),
        "reverse_charge": ("Reverse charge: VAT to be accounted for by the recipient "
                           "(Article 196, Council Directive 2006/112/EC)"),
    },
    "de": {
        "onsite": "Arbeitszeit vor Ort",
        "travel": "Fahrzeit",
        "labor_line": "{what} - {name} ({grade}{extra})",
        "window": ", {window} x{factor}",
        "travel_factor": ", Fahrzeitfaktor x{factor}",
        "window.overtime": "Überstunden",
        "window.weekend": "Wochenende",
        "window.holiday": "Feiertag",
        "minimum": "Mindestarbeitszeit vor Ort: Aufstockung von {onsite} h auf {minimum} h",
        "callout": "Notdienstpauschale",
        "mileage": "Fahrtkosten ({distance} {unit})",
        "included_in": "enthalten in {service}",
        "kit_part": "Teil des Satzes {sku}",
        "non_catalogue": "{description} (Sonderteil)",
        "warranty": "Garantie ({contract})",
        "covered": "im Vertrag {contract} enthalten",
        "callout_waived": "entfällt laut Vertrag {contract}",
        "discount": "Vertrag {contract}: {percent} Rabatt",
        "warranty_claim": "Garantiefall {contract}: Arbeiten für {customer}, {site}",
        "warranty_note": "Garantie {contract}",
        "contract_note": "Wartungsvertrag {contract}",
        "exempt_from_vat": "Von der Umsatzsteuer befreit",
        "exempt_certificate": "Steuerbefreit: Bescheinigung {number}",
        "outside_scope": ("Nicht im Inland steuerbar ({home}): Leistungsort ist das Land des "
                          "Leistungsempfängers"),
        "reverse_charge": ("Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge, "
                           "Art. 196 MwStSystRL 2006/112/EG)"),
    },
}


def phrase(language: str, key: str, **values: object) -> str:
    """The phrase ``key`` in ``language`` (English when the language has none)."""
    table = _PHRASES.get(language, _PHRASES["en"])
    return table.get(key, _PHRASES["en"][key]).format(**values)


def factor_text(language: str, value: Decimal) -> str:
    """A rate factor as written in ``language``: ``1.5`` or ``1,5``."""
    text = format(value.normalize(), "f")
    return text.replace(".", ",") if language == "de" else text
