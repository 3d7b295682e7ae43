"""The rules we compile ourselves are the official rules: compiled from the shared Schematron
sources (Peppol BIS 3, KoSIT's XRechnung), they pass every official example and reproduce
KoSIT's own test-instance expectations; the CEN artefacts still pass CEN's examples; the
compiled result is cached by the hash of its sources.

KoSIT's test instances (``xrechnung/test/instances``) carry their expectations as ``xmute``
processing instructions (KoSIT's xml-mutate, https://github.com/itplr-kosit/xml-mutate,
``doc/mutator.md``): each names a mutator applied to the element that follows it
(``identity``: none; ``remove``: the element removed; ``empty``: its content removed;
``code``: its text set to each of ``values`` in turn, split at ``separator``, default ",";
with ``attribute``, the same done to that attribute), and the rules that must
(``schematron-invalid``) or must not (``schematron-valid``) fail on the result, as
``xrubl:RULE`` / ``xrcii:RULE``. All 349 instances, 1,617 documents, 1,653 expectations."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from autoinvoice.documents import en16931, schematron
from autoinvoice.documents.schematron import RuleSet
from autoinvoice.domain.endpoint import EAS_CODES
from tests.unit.einvoice_cases import RULES_DIR, needs_all_rules, needs_rules

INSTANCES = RULES_DIR / "xrechnung" / "test" / "instances"
_PSEUDO = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')
_SETS = {"xrubl": RuleSet.XRECHNUNG_UBL, "xrcii": RuleSet.XRECHNUNG_CII}


def _files(folder: Path, pattern: str = "*.xml") -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def _name(path: Path) -> str:
    return path.name


@needs_all_rules
@pytest.mark.parametrize("example", _files(RULES_DIR / "peppol" / "examples"), ids=_name)
def test_every_official_peppol_example_passes_cen_and_the_compiled_peppol_rules(
        example: Path) -> None:
    result = en16931.validate_format(example.read_bytes(), "ubl")
    assert result.available, result.reason
    assert [(f.rule, f.message) for f in result.fatal] == []


@needs_rules
@pytest.mark.parametrize(("example", "syntax"), [
    *[(p, en16931.Syntax.UBL) for p in _files(RULES_DIR / "ubl")],
    *[(p, en16931.Syntax.CII) for p in _files(RULES_DIR / "cii")]], ids=lambda x: str(x))
def test_every_official_cen_example_passes_cen(example: Path, syntax: en16931.Syntax) -> None:
    assert en16931.validate(example.read_bytes(), syntax).fatal == ()


# --------------------------------------------------------------------------- KoSIT's tests
def _mutations(document: etree._ElementTree) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """Each xmute instruction's documents: (test id and value, document, instruction)."""
    for index, pi in enumerate(_instructions(document)):
        spec = dict(_PSEUDO.findall(pi.text or ""))
        variants = ([v.strip() for v in spec["values"].split(spec.get("separator", ","))]
                    if spec["mutator"] == "code" else [None])
        for value in variants:
            mutated = copy.deepcopy(document)
            target = _target(_instructions(mutated)[index])
            _mutate(target, spec, value)
            label = f"{spec.get('id', index)}" + (f"={value}" if value is not None else "")
            yield label, etree.tostring(mutated, encoding="UTF-8", xml_declaration=True), spec


def _instructions(document: etree._ElementTree) -> list[etree._Element]:
    """The xmute instructions in document order, those before the root element included."""
    root = document.getroot()
    nodes = [*reversed(list(root.itersiblings(preceding=True))),
             *root.iter(etree.ProcessingInstruction), *root.itersiblings()]
    return [n for n in nodes if isinstance(n, etree._ProcessingInstruction)
            and n.target == "xmute"]


def _target(pi: etree._Element) -> etree._Element:
    node = pi.getnext()
    while node is not None and not isinstance(node.tag, str):  # skip comments and PIs
        node = node.getnext()
    assert node is not None, f"xmute instruction {pi.text!r} is followed by no element"
    return node


def _mutate(target: etree._Element, spec: dict[str, str], value: str | None) -> None:
    mutator, attribute = spec["mutator"], spec.get("attribute")
    if attribute and mutator in ("remove", "empty"):
        if mutator == "remove":
            target.attrib.pop(attribute, None)
        else:
            target.set(attribute, "")
    elif mutator == "remove":
        parent = target.getparent()
        assert parent is not None
        parent.remove(target)
    elif mutator == "empty":
        for child in list(target):
            target.remove(child)
        target.text = None
    elif mutator == "code" and attribute:
        target.set(attribute, value or "")
    elif mutator == "code":
        target.text = value
    else:
        assert mutator == "identity", f"xmute mutator {mutator!r} is not implemented here"


def _expected(spec: dict[str, str], key: str) -> list[tuple[RuleSet, str]]:
    pairs = (item.split(":", 1) for item in re.split(r"[\s,]+", spec.get(key, "")) if item)
    return [(_SETS[prefix], rule) for prefix, rule in pairs]


def _failed(xml: bytes, rule_set: RuleSet) -> set[str]:
    result = en16931.validate_with(xml, (rule_set,))
    assert result.available, result.reason
    return {f.rule for f in result.findings}


@needs_all_rules
@pytest.mark.parametrize("instance", _files(INSTANCES, "*/*.xml"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_compiled_xrechnung_rules_reproduce_kosits_test_instance(instance: Path) -> None:
    document = etree.parse(str(instance))
    checked = 0
    for label, xml, spec in _mutations(document):
        for rule_set, rule in _expected(spec, "schematron-invalid"):
            assert rule in _failed(xml, rule_set), f"{label}: {rule} must fire"
            checked += 1
        for rule_set, rule in _expected(spec, "schematron-valid"):
            assert rule not in _failed(xml, rule_set), f"{label}: {rule} must not fire"
            checked += 1
    assert checked, f"{instance.name} carries no expectation"


# --------------------------------------------------------------------------- compiling
@needs_all_rules
def test_our_eas_code_list_is_peppols_cl008_list() -> None:
    sch = (RULES_DIR / "peppol" / "sch" / "PEPPOL-EN16931-UBL.sch").read_text("utf-8")
    [codes] = re.findall(r"<let name=\"eaid\"\s+value=\"tokenize\('([^']*)'", sch)
    assert frozenset(codes.split()) == EAS_CODES
    assert "EM" not in EAS_CODES


@needs_all_rules
def test_the_xrechnung_build_takes_its_version_tokens_from_kosits_build_xml() -> None:
    tokens = schematron.build_tokens(RULES_DIR / "xrechnung" / "build.xml")
    assert set(tokens) == {"xr-schematron.version.full", "xrechnung.version"}
    assert all(value and "${" not in value for value in tokens.values())
    filtered = schematron.ant_filter(b"<title>@xrechnung.version@</title>", tokens)
    assert filtered == f"<title>{tokens['xrechnung.version']}</title>".encode()


@needs_all_rules
def test_compiled_rules_are_cached_by_the_hash_of_their_sources(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given an empty cache and a private copy of the Peppol sources
    monkeypatch.setenv(schematron.CACHE_ENV, str(tmp_path / "cache"))
    rules = tmp_path / "rules"
    for part in ("peppol", "schxslt"):
        _copy_tree(RULES_DIR / part, rules / part)
    # when compiled twice
    first = schematron.compiled_path(RuleSet.PEPPOL_UBL, rules)
    stamp = first.stat().st_mtime_ns
    again = schematron.compiled_path(RuleSet.PEPPOL_UBL, rules)
    # then the second time reads the first's file, named by the sources' SHA-256
    assert again == first
    assert again.stat().st_mtime_ns == stamp
    assert schematron.digest(RuleSet.PEPPOL_UBL, rules) in first.name
    assert first.parent == tmp_path / "cache"
    # and a changed source is compiled anew
    sch = rules / "peppol" / "sch" / "PEPPOL-EN16931-UBL.sch"
    sch.write_bytes(sch.read_bytes() + b"\n<!-- changed -->\n")
    changed = schematron.compiled_path(RuleSet.PEPPOL_UBL, rules)
    assert changed != first
    assert changed.is_file()


def _copy_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())


def test_without_schxslt_the_compiled_rule_sets_are_reported_unavailable(
        tmp_path: Path) -> None:
    result = en16931.validate_format(b"<Invoice/>", "xrechnung", rules_dir=tmp_path)
    assert not result.available
    assert not result.passed
    assert "rules not available" in result.reason


@needs_all_rules
def test_an_unwritable_cache_compiles_into_a_temporary_directory_instead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a cache location that cannot be a directory (a file is in the way)
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv(schematron.CACHE_ENV, str(tmp_path / "a-file" / "rules"))
    rules = tmp_path / "rules"
    for part in ("peppol", "schxslt"):
        _copy_tree(RULES_DIR / part, rules / part)
    # when the rules are compiled, they still are, elsewhere
    path = schematron.compiled_path(RuleSet.PEPPOL_UBL, rules)
    assert path.is_file()
    assert not path.is_relative_to(tmp_path / "a-file")
