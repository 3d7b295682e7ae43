"""Electronic addresses (EN 16931 BT-34 seller, BT-49 buyer): a Peppol participant id, written
``<scheme>:<identifier>`` (``0088:4012345000009``), its scheme from the Electronic Address
Scheme (EAS) code list.

The codes are the list Peppol BIS Billing 3.0 checks (rule PEPPOL-EN16931-CL008, variable
``eaid`` in ``PEPPOL-EN16931-UBL.sch``, OpenPEPPOL/peppol-bis-invoice-3; a test holds this copy
to the shared one). ``EM`` (e-mail) is not in it: Peppol refuses e-mail addresses.

Where no participant id is configured, a VAT identifier gives one when the EAS has a VAT
scheme for its country (``VAT_SCHEMES``, the ``<CC>:VAT`` entries of the Peppol EAS code list,
https://docs.peppol.eu/poacc/billing/3.0/codelist/eas/): ``DE…`` is ``9930:DE…``. Italy is
left out (its Partita IVA scheme 0211 has its own format), as are non-VAT ids (a US EIN):
configure those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["EAS_CODES", "VAT_SCHEMES", "ElectronicAddress", "from_vat_id", "parse_peppol_id"]

EAS_CODES = frozenset((
    "0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0151 0177 0183 0184 0188 "
    "0190 0191 0192 0193 0195 0196 0198 0199 0200 0201 0202 0204 0208 0209 0210 0211 0212 "
    "0213 0215 0216 0218 0221 0230 0235 9910 9913 9914 9915 9918 9919 9920 9922 9923 9924 "
    "9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935 9936 9937 9938 9939 9940 9941 "
    "9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952 9953 9957 9959 0147 0154 0158 "
    "0170 0194 0203 0205 0217 0225 0240").split())

#: VAT identifier prefix -> the EAS scheme of that country's VAT numbers ("<CC>:VAT").
VAT_SCHEMES = {
    "HU": "9910", "AT": "9914", "ES": "9920", "AD": "9922", "AL": "9923", "BA": "9924",
    "BE": "9925", "BG": "9926", "CH": "9927", "CY": "9928", "CZ": "9929", "DE": "9930",
    "EE": "9931", "GB": "9932", "EL": "9933", "HR": "9934", "IE": "9935", "LI": "9936",
    "LT": "9937", "LU": "9938", "LV": "9939", "MC": "9940", "ME": "9941", "MK": "9942",
    "MT": "9943", "NL": "9944", "PL": "9945", "PT": "9946", "RO": "9947", "RS": "9948",
    "SI": "9949", "SK": "9950", "SM": "9951", "TR": "9952", "VA": "9953", "FR": "9957",
}
#: A compacted VAT id: country prefix, then 2 to 14 characters (the Swiss ``CHE…MWST`` is 16).
_VAT_ID = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,14}$")
#: The participant identifier scheme of the Peppol Policy for use of Identifiers.
_UPIS = "iso6523-actorid-upis::"


@dataclass(frozen=True, slots=True)
class ElectronicAddress:
    scheme: str  # EAS code, e.g. 0088
    identifier: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.identifier}"


def parse_peppol_id(text: str) -> ElectronicAddress:
    """``"0088:4012345000009"`` (or with the ``iso6523-actorid-upis::`` prefix) as scheme and
    identifier; ``ValueError`` naming the problem when the scheme is not an EAS code or the
    identifier does not fit its scheme."""
    raw = text.strip().removeprefix(_UPIS)
    scheme, colon, identifier = raw.partition(":")
    if not colon or not scheme or not identifier.strip():
        raise ValueError(f"{text!r} is not '<scheme>:<identifier>' (e.g. '0088:4012345000009' "
                         "for a GLN, '9930:DE123456789' for a German VAT id)")
    identifier = identifier.strip()
    if scheme not in EAS_CODES:
        hint = " (e-mail is not a Peppol address)" if scheme.upper() == "EM" else ""
        raise ValueError(f"{text!r}: scheme {scheme!r} is not in the Peppol EAS code list"
                         f"{hint}")
    if re.search(r"\s", identifier):
        raise ValueError(f"{text!r}: the identifier must not contain spaces")
    problem = _scheme_problem(scheme, identifier)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    return ElectronicAddress(scheme, identifier)


def _scheme_problem(scheme: str, identifier: str) -> str | None:
    if scheme == "0088" and not (re.fullmatch(r"[0-9]{13}", identifier) and _gln_ok(identifier)):
        return "a GLN (0088) is 13 digits with a valid GS1 check digit (PEPPOL-COMMON-R040)"
    country = next((cc for cc, code in VAT_SCHEMES.items() if code == scheme), None)
    if country and not identifier.upper().startswith(country):
        return f"a {country} VAT id (scheme {scheme}) starts with {country}"
    return None


def _gln_ok(digits: str) -> bool:
    """GS1 check digit: weights 3 and 1 from the right, excluding the check digit."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def from_vat_id(vat_id: str | None) -> ElectronicAddress | None:
    """The participant id a VAT identifier gives where its country has an EAS VAT scheme."""
    compact = re.sub(r"[\s.\-]", "", vat_id or "").upper()  # as printed: "CHE-116.281.710 MWST"
    if not _VAT_ID.match(compact) or compact[:2] not in VAT_SCHEMES:
        return None
    return ElectronicAddress(VAT_SCHEMES[compact[:2]], compact)
