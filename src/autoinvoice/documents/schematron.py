"""The official e-invoice rules published as Schematron source, compiled to XSLT on demand.

EN 16931's CEN rules come compiled (``ubl/``, ``cii/``); Peppol BIS Billing 3.0 and KoSIT's
XRechnung rules are published only as Schematron (``.sch``). They are compiled here with
SchXslt 1.10 (``schxslt/xslt-2.0/pipeline-for-svrl.xsl``, https://github.com/schxslt/schxslt)
run on SaxonC-HE (``saxonche``), the compiler KoSIT's own build uses.

XRechnung is built as KoSIT's ``build.xml`` builds it (itplr-kosit/xrechnung-schematron,
targets ``prepare-build-dir``, ``merge-peppol-rules-with-xr-rules``,
``check-merge-peppol-rules-with-xr-rules``, ``compile-*-schematron``), in a scratch copy of
its layout:

1. ``XRechnung-{UBL,CII}-validation.sch`` copied with Ant's filter tokens replaced
   (``@xr-schematron.version.full@``, ``@xrechnung.version@``, values read from
   ``build.xml``) into ``build/schematron/tmp/``; ``common.sch`` copied unfiltered to
   ``build/schematron/``; the Peppol ``.sch`` into ``build/bis/``;
2. ``src/xsl/check-schematron-asserts.xsl`` run on each (it stops on an assertion without
   a message);
3. ``src/xsl/peppol-into-xr.xsl`` with ``syntax`` = UBL or CII merges the Peppol rules
   whitelisted in ``src/xsl/rule-list.xml`` into ``build/schematron/{ubl,cii}/``;
4. SchXslt compiles the merged ``.sch`` (which includes ``../common.sch``).

The build's Peppol rules are the ones in ``peppol/sch/`` (KoSIT's ``build.xml`` downloads
Peppol BIS 3.0.20; ours is OpenPEPPOL/peppol-bis-invoice-3 at the commit named in
``../shared/en16931/README.md``).

Compiling takes a fraction of a second per rule set; it is done once per process
(``compiled``) and the XSLT kept on disk under the user's cache directory (or
``$AUTOINVOICE_RULES_CACHE``), named by the SHA-256 of every source file that went into it,
so a changed source is compiled again and an unchanged one never. The rules directory itself
is only read (it is read-only in CI).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

__all__ = ["CACHE_ENV", "RuleSet", "cache_dir", "compiled", "compiled_path", "processor",
           "sources", "sources_present"]

#: Setting for where compiled rules are kept (read when compiling, never at import).
CACHE_ENV = "AUTOINVOICE_RULES_CACHE"
#: Changes when the way we compile changes, so older cached files are not reused.
_RECIPE = b"autoinvoice schematron recipe 1"
_SCHXSLT = "schxslt/xslt-2.0"
_XR = "xrechnung"
_PEPPOL = {"UBL": "peppol/sch/PEPPOL-EN16931-UBL.sch", "CII": "peppol/sch/PEPPOL-EN16931-CII.sch"}
_LOCK = threading.RLock()
log = logging.getLogger("autoinvoice.documents")


class RuleSet(StrEnum):
    """A body of rules a document is checked against (the compiled CEN artefacts, or a
    Schematron source compiled here)."""

    CEN_UBL = "cen-ubl"
    CEN_CII = "cen-cii"
    PEPPOL_UBL = "peppol-ubl"
    XRECHNUNG_UBL = "xrechnung-ubl"
    XRECHNUNG_CII = "xrechnung-cii"


_CEN = {RuleSet.CEN_UBL: "ubl/EN16931-UBL-validation.xslt",
        RuleSet.CEN_CII: "cii/EN16931-CII-validation.xslt"}


def _xr_sources(syntax: str) -> list[str]:
    schematron = f"{_XR}/src/validation/schematron"
    return [f"{schematron}/{syntax.lower()}/XRechnung-{syntax}-validation.sch",
            f"{schematron}/common.sch", f"{_XR}/src/xsl/peppol-into-xr.xsl",
            f"{_XR}/src/xsl/rule-list.xml", f"{_XR}/src/xsl/check-schematron-asserts.xsl",
            f"{_XR}/build.xml", _PEPPOL["UBL"], _PEPPOL["CII"]]


def sources(rule_set: RuleSet, rules_dir: Path) -> list[Path]:
    """Every file the rule set is made from (for the CEN sets: the compiled XSLT itself)."""
    if rule_set in _CEN:
        return [rules_dir / _CEN[rule_set]]
    if rule_set is RuleSet.PEPPOL_UBL:
        names = [_PEPPOL["UBL"]]
    else:
        names = _xr_sources("UBL" if rule_set is RuleSet.XRECHNUNG_UBL else "CII")
    compiler = sorted(p.relative_to(rules_dir).as_posix()
                      for p in (rules_dir / _SCHXSLT).rglob("*.xsl"))
    return [rules_dir / name for name in [*names, *compiler]]


def sources_present(rule_set: RuleSet, rules_dir: Path) -> Path | None:
    """The first missing source file, or None when all are there."""
    if rule_set not in _CEN and not (rules_dir / _SCHXSLT / "pipeline-for-svrl.xsl").is_file():
        return rules_dir / _SCHXSLT / "pipeline-for-svrl.xsl"
    return next((p for p in sources(rule_set, rules_dir) if not p.is_file()), None)


def cache_dir() -> Path:
    """``$AUTOINVOICE_RULES_CACHE``, else ``$XDG_CACHE_HOME/autoinvoice/rules``, else
    ``~/.cache/autoinvoice/rules``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "autoinvoice" / "rules"


def digest(rule_set: RuleSet, rules_dir: Path) -> str:
    """SHA-256 over the recipe and every source (its path in the rules and its bytes)."""
    sha = hashlib.sha256(_RECIPE + rule_set.value.encode())
    for path in sources(rule_set, rules_dir):
        sha.update(b"\0" + path.relative_to(rules_dir).as_posix().encode() + b"\0")
        sha.update(path.read_bytes())
    return sha.hexdigest()


def compiled_path(rule_set: RuleSet, rules_dir: Path) -> Path:
    """The validating XSLT for the rule set: the CEN artefact as published, else our
    compilation in the cache (made now if it is not there yet)."""
    if rule_set in _CEN:
        return rules_dir / _CEN[rule_set]
    with _LOCK:
        name = f"{rule_set.value}-{digest(rule_set, rules_dir)}.xsl"
        if (cache_dir() / name).is_file():
            return cache_dir() / name
        target = _writable_cache() / name
        if not target.is_file():
            _write_atomically(target, _compile(rule_set, rules_dir))
        return target


@cache
def processor() -> Any:
    # imported on use: SaxonC starts a runtime; the package ships no type hints
    from saxonche import PySaxonProcessor  # type: ignore[import-not-found, unused-ignore]

    return PySaxonProcessor(license=False)


@cache
def compiled(rule_set: RuleSet, rules_dir: Path) -> Any:
    """The rule set as a compiled Saxon stylesheet, once per process and rules directory."""
    path = compiled_path(rule_set, rules_dir.resolve())
    return processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def _write_atomically(target: Path, text: str) -> None:
    """Several processes may compile at once: each writes its own file and renames it."""
    fd, scratch = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(scratch, target)


def _compile(rule_set: RuleSet, rules_dir: Path) -> str:
    if rule_set is RuleSet.PEPPOL_UBL:
        return _schxslt(rules_dir, rules_dir / _PEPPOL["UBL"])
    syntax = "UBL" if rule_set is RuleSet.XRECHNUNG_UBL else "CII"
    with tempfile.TemporaryDirectory(dir=_writable_cache()) as scratch:
        return _schxslt(rules_dir, _build_xrechnung(rules_dir, syntax, Path(scratch)))


def _writable_cache() -> Path:
    """The cache directory, made if need be; where it cannot be (a read-only home), a
    temporary directory of this process, so checking never fails for want of a cache."""
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=cache_dir())
        probe.close()
        return cache_dir()
    except OSError:
        log.warning("rules cache %s is not writable; compiling into a temporary directory "
                    "(set %s)", cache_dir(), CACHE_ENV)
        return _process_cache()


@cache
def _process_cache() -> Path:
    return Path(tempfile.mkdtemp(prefix="autoinvoice-rules-"))


def _stylesheet(path: Path) -> Any:
    return processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def _schxslt(rules_dir: Path, schematron: Path) -> str:
    """SchXslt's pipeline (include, expand, compile for SVRL) on one ``.sch``."""
    pipeline = _stylesheet(rules_dir / _SCHXSLT / "pipeline-for-svrl.xsl")
    text: str | None = pipeline.transform_to_string(source_file=str(schematron))
    if not text:
        raise RuntimeError(f"SchXslt produced nothing for {schematron}")
    return text


# --------------------------------------------------------------------------- XRechnung
def _build_xrechnung(rules_dir: Path, syntax: str, work: Path) -> Path:
    """KoSIT's build in ``work``: filtered sources, the check, the Peppol merge; returns the
    merged ``.sch`` (``build/schematron/{ubl,cii}/XRechnung-*-validation.sch``)."""
    xr = rules_dir / _XR
    name = f"XRechnung-{syntax}-validation.sch"
    schematron = xr / "src/validation/schematron"
    for folder in ("src/xsl", "build/bis", "build/schematron/tmp",
                   f"build/schematron/{syntax.lower()}"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    for file in ("peppol-into-xr.xsl", "rule-list.xml", "check-schematron-asserts.xsl"):
        shutil.copyfile(xr / "src/xsl" / file, work / "src/xsl" / file)
    for key, peppol in _PEPPOL.items():
        shutil.copyfile(rules_dir / peppol, work / "build/bis" / f"PEPPOL-EN16931-{key}.sch")
    shutil.copyfile(schematron / "common.sch", work / "build/schematron/common.sch")
    filtered = work / "build/schematron/tmp" / name
    filtered.write_bytes(ant_filter(
        (schematron / syntax.lower() / name).read_bytes(), build_tokens(xr / "build.xml")))
    _stylesheet(work / "src/xsl/check-schematron-asserts.xsl").transform_to_string(
        source_file=str(filtered))  # terminates (raises) on an assertion without text
    merged = work / "build/schematron" / syntax.lower() / name
    merge = _stylesheet(work / "src/xsl/peppol-into-xr.xsl")
    merge.set_parameter("syntax", processor().make_string_value(syntax))
    merge.transform_to_file(source_file=str(filtered), output_file=str(merged))
    if not merged.is_file():
        raise RuntimeError(f"the Peppol merge wrote no {merged}")
    return merged


def build_tokens(build_xml: Path) -> dict[str, str]:
    """The filter tokens of ``build.xml``'s ``prepare-build-dir`` target, with the
    ``${property}`` references in their values resolved from its ``<property>`` elements."""
    root = etree.parse(str(build_xml)).getroot()
    properties = {p.get("name", ""): p.get("value", "") for p in root.iter("property")
                  if p.get("value") is not None}
    target = next(t for t in root.iter("target") if t.get("name") == "prepare-build-dir")
    return {f.get("token", ""): _resolve(f.get("value", ""), properties)
            for f in target.iter("filter")}


def _resolve(value: str, properties: dict[str, str], depth: int = 0) -> str:
    resolved = re.sub(r"\$\{([^}]+)\}", lambda m: properties.get(m[1], m[0]), value)
    return resolved if resolved == value or depth > 8 else _resolve(resolved, properties,
                                                                    depth + 1)


def ant_filter(content: bytes, tokens: dict[str, str]) -> bytes:
    """Ant's ``<copy filtering="true">``: every ``@token@`` of a defined token replaced."""
    for token, value in tokens.items():
        content = content.replace(f"@{token}@".encode(), value.encode())
    return content
