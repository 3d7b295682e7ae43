"""A tenant's document templates and logo are checked when the app starts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.validation import InputError
from tests.integration.conftest import config_source


def config_with(tmp_path, documents: str):
    text = config_source(tmp_path).replace(
        '[tenants.mail.platform]', f'documents = {{ {documents} }}\n[tenants.mail.platform]', 1)
    return parse_config(text, "test config")


def test_a_broken_tenant_template_refuses_the_start_naming_the_key_and_the_file(tmp_path):
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "footer.en.j2").write_text("{{ seller.legal_name }", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        bootstrap(config_with(tmp_path, f'template_dir = "{folder}"'))
    message = str(caught.value)
    assert "tenants.mail.documents.template_dir" in message
    assert "footer.en.j2" in message


def test_a_logo_that_is_not_an_image_refuses_the_start(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"not a png")
    with pytest.raises(InputError) as caught:
        bootstrap(config_with(tmp_path, f'logo = "{logo}"'))
    assert "tenants.mail.documents.logo" in str(caught.value)


def test_a_good_logo_and_templates_start_and_the_pdf_carries_the_logo(tmp_path):
    from pypdf import PdfReader

    from autoinvoice.pipeline import documents
    from tests.unit.test_pdf import us_invoice

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), (24, 62, 110)).save(logo)
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "footer.en.j2").write_text("Thank you, from {{ seller.legal_name }}",
                                         encoding="utf-8")
    app = bootstrap(config_with(tmp_path, f'logo = "{logo}", template_dir = "{folder}"'))
    invoice = us_invoice()
    made = documents.make_pdf(app.config.tenant("mail"), invoice, None)
    plain = documents.make_pdf(app.config.tenant("northwind"), invoice, None)
    page = PdfReader(io.BytesIO(made.content)).pages[0]
    assert len(page.images) == len(PdfReader(io.BytesIO(plain.content)).pages[0].images) + 1
    assert "Thank you, from Northwind" in page.extract_text()
