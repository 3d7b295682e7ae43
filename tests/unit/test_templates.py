"""Templates a tenant can override: label catalogues key by key, text templates by file name;
a broken one is refused with the file named."""

from __future__ import annotations

import string
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from autoinvoice.documents.pdf import render_invoice_pdf
from autoinvoice.documents.pdf_check import check_templates
from autoinvoice.documents.templates import (
    BUILT_IN,
    LANGUAGES,
    TemplateError,
    load_templates,
)
from tests.unit.test_pdf import german_invoice, pdf_text, us_invoice


def words(pdf: bytes) -> Counter[str]:
    return Counter(" ".join(pdf_text(pdf)).split())


def tenant_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def test_built_in_catalogues_have_the_same_keys_and_placeholders_in_every_language() -> None:
    catalogues = {lang: load_templates(None, lang).labels for lang in LANGUAGES}
    english = catalogues["en"]
    for lang, labels in catalogues.items():
        plain = {k for k in labels if "." not in k}
        assert plain == {k for k in english if "." not in k}, lang
        for key in plain:
            assert fields(labels[key]) == fields(english[key]), (lang, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_built_in_templates_pass_the_check(language: str) -> None:
    assert check_templates(None, language) == []


def test_a_tenant_label_and_footer_change_exactly_that(tmp_path: Path) -> None:
    # given: one label and the footer overridden, nothing else
    folder = tenant_dir(tmp_path, {
        "labels.en.toml": 'bill_to = "Invoice to"\n',
        "footer.en.j2": "Custom footer for {{ seller.legal_name | upper }} {{ number }}\n",
    })
    invoice = us_invoice()

    # when
    built_in = words(render_invoice_pdf(invoice))
    tenant = words(render_invoice_pdf(invoice, template_dir=folder))

    # then
    added, removed = tenant - built_in, built_in - tenant
    # "TO", "LLC" and the invoice number are in both
    assert added == Counter("INVOICE Custom footer for NORTHWIND COMPRESSED AIR SERVICES".split())
    default_footer = ("Northwind Compressed Air Services · 410 W 7th St, Tulsa, OK 74119 · "
                      "Tax ID 73-1234567 Invoice · billing@northwind.example")
    assert removed == Counter(["BILL", *default_footer.split()])


def test_tenant_templates_apply_per_language(tmp_path: Path) -> None:
    folder = tenant_dir(tmp_path, {"labels.de.toml": 'bill_to = "Kunde"\n'})
    en = " ".join(pdf_text(render_invoice_pdf(german_invoice(), template_dir=folder)))
    de = " ".join(pdf_text(render_invoice_pdf(german_invoice(), language="de",
                                              template_dir=folder)))
    assert "BILL TO" in en
    assert "KUNDE" in de
    assert "RECHNUNGSEMPFÄNGER" not in de
    assert "Zwischensumme" in de  # the rest is built in


def test_a_tenant_may_name_a_data_slug(tmp_path: Path) -> None:
    folder = tenant_dir(tmp_path, {"labels.en.toml": '[service_type]\n'
                                                     'emergency_repair = "24/7 breakdown call"\n'})
    text = " ".join(pdf_text(render_invoice_pdf(us_invoice(), template_dir=folder)))
    assert "Job WO-10482 · 24/7 breakdown call ·" in text


def test_loaded_templates_are_cached_per_folder_and_language(tmp_path: Path) -> None:
    folder = tenant_dir(tmp_path, {})
    assert load_templates(folder, "de") is load_templates(folder, "de")
    assert load_templates(folder, "de") is not load_templates(folder, "en")
    assert load_templates(None, "en") is not load_templates(folder, "en")


BROKEN = [
    pytest.param("labels.en.toml", 'bill_to = "Invoice to\n', "not a valid label catalogue",
                 id="toml-syntax"),
    pytest.param("labels.en.toml", 'bill_too = "Invoice to"\n', "unknown label key 'bill_too'",
                 id="unknown-label-key"),
    pytest.param("labels.en.toml", 'page = "Page {page} of {total}"\n',
                 "unknown placeholder(s) {total}", id="unknown-placeholder"),
    pytest.param("labels.en.toml", "page = 3\n", "labels must be strings: page",
                 id="not-a-string"),
    pytest.param("footer.en.j2", "{{ seller.legal_name }\n", "template syntax error",
                 id="jinja-syntax"),
    pytest.param("footer.en.j2", "{{ seller.fax }}\n", "has no attribute 'fax'",
                 id="unknown-attribute"),
    pytest.param("terms.en.j2", "Pay by {{ due }}\n", "'due' is undefined",
                 id="unknown-variable"),
    pytest.param("footer.en.j2", "{{ seller.__class__.__mro__ }}\n", "is unsafe",
                 id="python-internals-sandboxed"),
    pytest.param("footer.en.j2", "{% set x = [1] %}{{ x.append(2) }}\n", "is unsafe",
                 id="mutation-sandboxed"),
    pytest.param("payment.en.j2", "{{ labels.bank }}\n", "has no attribute 'bank'",
                 id="unknown-label-in-template"),
]


@pytest.mark.parametrize(("name", "text", "problem"), BROKEN)
def test_a_broken_tenant_template_is_refused_naming_the_file(
        tmp_path: Path, name: str, text: str, problem: str) -> None:
    # given
    folder = tenant_dir(tmp_path, {name: text})
    invoice = german_invoice()  # has no bank details: the check must still find payment.en.j2

    # when
    problems = check_templates(folder, "en")

    # then
    assert len(problems) == 1
    assert str(folder / name) in problems[0]
    assert problem in problems[0]
    if name != "payment.en.j2":
        with pytest.raises(TemplateError, match=str(folder / name)):
            render_invoice_pdf(invoice, template_dir=folder)


def test_check_reports_misnamed_files_and_a_missing_folder(tmp_path: Path) -> None:
    folder = tenant_dir(tmp_path, {"footer.j2": "x", "labels.fr.toml": "", "logo.png": ""})
    problems = check_templates(folder, "en")
    assert [p.split(":")[0] for p in problems] == [str(folder / "footer.j2"),
                                                   str(folder / "labels.fr.toml")]
    assert "not a known template file name" in problems[0]
    missing = check_templates(tmp_path / "nowhere", "de")
    assert missing == [f"{tmp_path / 'nowhere'}: template_dir is not a directory"]
    with pytest.raises(TemplateError, match="template_dir is not a directory"):
        render_invoice_pdf(us_invoice(), template_dir=tmp_path / "nowhere")


def test_check_reads_the_files_afresh(tmp_path: Path) -> None:
    folder = tenant_dir(tmp_path, {"labels.en.toml": 'bill_to = "Invoice to"\n'})
    render_invoice_pdf(us_invoice(), template_dir=folder)  # cached as fine
    (folder / "labels.en.toml").write_text('bill_to = "Invoice to\n', encoding="utf-8")
    assert len(check_templates(folder, "en")) == 1


def test_built_in_label_files_are_plain_toml() -> None:
    for path in sorted(BUILT_IN.glob("labels.*.toml")):
        assert tomllib.loads(path.read_text(encoding="utf-8"))


def test_every_built_in_label_exists_in_english_and_german_with_the_same_placeholders():
    import string
    import tomllib
    from pathlib import Path

    import autoinvoice.documents.templates as module

    folder = Path(module.__file__).parent / "templates"
    en, de = (tomllib.loads((folder / f"labels.{lang}.toml").read_text("utf-8"))
              for lang in ("en", "de"))
    flat_en = {k: v for k, v in en.items() if isinstance(v, str)}
    flat_de = {k: v for k, v in de.items() if isinstance(v, str)}
    assert set(flat_en) == set(flat_de)

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key, text in flat_en.items():
        assert fields(text) == fields(flat_de[key]), key
