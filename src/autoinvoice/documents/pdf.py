"""The invoice as a PDF: ``render_invoice_pdf(invoice, language=..., template_dir=...) -> bytes``.

One A4 page (Letter for US/CA sellers) for an ordinary job; long line tables continue on
further pages, each with the line-table header and "Page n of m". Text is drawn with
DejaVu Sans (bundled in ``fonts/``, Bitstream Vera licence) so umlauts, "ß" and "€" render;
the PDF core fonts cannot. The words come from the tenant's language ("en" or "de"): labels
from a label catalogue, the payment terms, bank details and footer from Jinja2 templates, both
overridable per tenant (``documents.templates``, ``docs/templates.md``). Numbers and dates follow
the language when it is German, else the seller's country (``documents.formats``). Text from
the invoice data (line descriptions, legal notes, coverage reasons) is printed as it is.
The output is deterministic: the creation date is the issue date, so the same invoice and
arguments always give the same bytes. A credit note (``Invoice.kind`` CREDIT_NOTE) is the same
document titled "Credit note", naming the invoice it credits instead of a due date and terms.

Speed: fonts are prepared once per process (``documents.fonts``), and text is placed with
``FPDF.text`` and measured from the font's width table (``cell`` and ``get_string_width``
cost 8x more). A document that needs a character outside the fast faces is drawn again
with the full faces, so nothing is ever lost, only slower.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoinvoice.documents.canvas import (
    ACCENT,
    INK,
    LINK,
    MUTED,
    RULE,
    WARN,
    Canvas,
    Column,
    Document,
)
from autoinvoice.documents.fonts import install_fonts, missing_glyphs, preload_fonts
from autoinvoice.documents.formats import Formats
from autoinvoice.documents.templates import TemplateError, Templates, humanize, load_templates
from autoinvoice.domain.invoice import Invoice, InvoiceFlag, InvoiceLine, TaxCategory
from autoinvoice.domain.job import Address

__all__ = ["Formats", "TemplateError", "humanize", "preload_fonts", "render_invoice_pdf",
           "render_with"]
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- text

def address_lines(address: Address, home: str = "") -> list[str]:
    """Postal lines; the country is left out when it is ``home`` (the seller's)."""
    city = " ".join(x for x in (address.postal_code, address.city) if x)
    if address.country.upper() in ("US", "CA"):
        state_zip = f"{address.region} {address.postal_code}".strip()
        city = ", ".join(x for x in (address.city, state_zip) if x)
    elif address.region:
        city = f"{city}, {address.region}"
    country = "" if address.country.upper() == home.upper() else address.country.upper()
    return [x for x in (address.line1, address.line2, city, country) if x]


class _Renderer(Canvas):
    LEFT, RIGHT, TOP, BOTTOM = 16.0, 16.0, 14.0, 18.0  # the footer rule is 15.5 mm up

    def __init__(self, invoice: Invoice, pay_url: str | None, logo_png: bytes | None,
                 templates: Templates, full_fonts: bool) -> None:
        self.inv, self.pay_url, self.logo = invoice, pay_url, logo_png
        self.tpl, self.t = templates, templates.label
        self.doc = self.t("credit_note" if invoice.is_credit_note else "invoice")
        self.number = invoice.number or self.t("draft")
        self.label = f"{'credit note' if invoice.is_credit_note else 'invoice'} for job " \
                     f"{invoice.job_id}"
        self.fmt = Formats.for_invoice(invoice, templates.language)
        self.tax = self.t(f"tax_{self.fmt.tax_kind()}")
        self.footer_rows: list[str] | None = None
        letter = self.fmt.country in ("US", "CA")
        self.pdf = Document(unit="mm", format="letter" if letter else "A4")
        install_fonts(self.pdf, full=full_fonts)
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(self.LEFT, self.TOP, self.RIGHT)
        self.pdf.c_margin = 0
        self.x0, self.x1 = self.LEFT, self.pdf.w - self.RIGHT
        self.y_max = self.pdf.h - self.BOTTOM
        self.y = self.TOP
        self.in_table = False
        self.columns = self._columns()

    def ensure(self, height: float) -> None:
        if self.y + height > self.y_max:
            self.new_page(in_table=False)

    def new_page(self, in_table: bool) -> None:
        self.in_table = in_table
        self.pdf.add_page()

    # ---- document --------------------------------------------------------------------
    def render(self) -> Document:
        inv, pdf = self.inv, self.pdf
        pdf.set_creation_date(datetime.combine(inv.issue_date, time(0), tzinfo=UTC))
        pdf.set_title(f"{self.doc} {self.number}")
        pdf.set_author(inv.seller.legal_name)
        pdf.set_subject(self.t("subject", job=inv.job_id))
        pdf.set_creator("autoinvoice")
        pdf.set_lang(self.tpl.language)
        pdf.on_header, pdf.on_footer = self.continuation_header, self.footer
        pdf.add_page()
        self.masthead()
        self.parties()
        self.job_block()
        self.table()
        self.totals()
        self.payment()
        self.notes()
        self.signature()
        return pdf

    def continuation_header(self) -> None:
        if self.pdf.page_no() == 1:
            return
        self.text(self.x0, self.TOP + 3, self.inv.seller.legal_name, 9, True)
        self.text(self.x1, self.TOP + 3, self.t("continued", document=self.doc,
                                                number=self.number), 9, False, MUTED, "R")
        self.rule(self.TOP + 5.5)
        self.y = self.TOP + 9
        if self.in_table:
            self.table_header()

    def footer(self) -> None:
        y = self.pdf.h - 12
        self.rule(y - 3.5)
        if self.footer_rows is None:  # the same on every page: rendered and wrapped once
            rows = self.tpl.render("footer", self.context()) or [""]
            width = self.x1 - self.x0  # the first row shares its line with the page number
            wrapped = self.wrap(rows[0], width - 42, 7)
            self.footer_rows = [*wrapped, *(r for row in rows[1:] for r in self.wrap(row, width,
                                                                                     7))][:3]
        self.lines(self.x0, y - 2.5, self.footer_rows, 7, False, MUTED)
        self.font(8, False, MUTED)  # a size larger than the footer: it is looked for
        self.pdf.set_xy(self.x1 - 40, y - 2.9)
        self.pdf.cell(40, 3.8, self.t("page", page=self.pdf.page_no(), pages="{nb}"), align="R")

    def context(self) -> dict[str, Any]:
        """What the text templates see (documented in docs/templates.md)."""
        inv, fmt, seller = self.inv, self.fmt, self.inv.seller
        payment = seller.payment
        address = address_lines(seller.address, inv.customer.billing_address.country)
        return {
            "invoice": inv, "seller": seller, "customer": inv.customer, "job": inv.job,
            "payment": payment, "labels": self.tpl.labels, "language": self.tpl.language,
            "document": self.doc, "number": self.number, "credit_note": inv.is_credit_note,
            "corrects": inv.corrects, "issue_date": fmt.date(inv.issue_date),
            "due_date": fmt.date(inv.due_date), "terms_days": inv.payment_terms_days,
            "subtotal": fmt.money(inv.subtotal), "tax_total": fmt.money(inv.tax_total),
            "total": fmt.money(inv.total), "pay_url": self.pay_url,
            "iban": fmt.iban(payment.iban) if payment and payment.iban else None,
            "seller_address": ", ".join(address),
            "tax_id_label": self.t(f"tax_id_{fmt.tax_id_kind()}"),
        }

    def masthead(self) -> None:
        inv, fmt, seller = self.inv, self.fmt, self.inv.seller
        top = self.y
        if self.logo and self.image(self.logo, self.x0, top, 60, 14, center=False):
            top += 17
        left = self.lines(self.x0, top, [seller.legal_name], 12, True, ACCENT)
        details = address_lines(seller.address, inv.customer.billing_address.country)
        if seller.tax_id:
            details.append(f"{self.t(f'tax_id_{fmt.tax_id_kind()}')}: {seller.tax_id}")
        if seller.phone:
            details.append(self.t("phone", phone=seller.phone))
        if seller.email:
            details.append(seller.email)
        if seller.contact_name:
            details.append(self.t("contact", name=seller.contact_name))
        left = self.lines(self.x0, left + 0.6, details, 8.5, False, MUTED)

        right = self.lines(self.x1, self.y, [self.doc.upper()], 22, True, ACCENT, "R") + 1.5
        t = self.t
        days = inv.payment_terms_days
        terms = t("terms_net", days=days) if days else t("terms_on_receipt")
        meta = [(t("document_number", document=self.doc), self.number),
                (t("issue_date"), fmt.date(inv.issue_date)),
                (t("due_date"), fmt.date(inv.due_date)), (t("terms"), terms)]
        if inv.is_credit_note:
            meta[2:] = [(t("credits_invoice"), inv.corrects or "-")]
        if inv.po_number:
            meta.append((t("po_number"), inv.po_number))
        if inv.buyer_reference and inv.buyer_reference != inv.po_number:
            meta.append((t("buyer_reference"), inv.buyer_reference))
        meta.append((t("job"), inv.job_id))
        for i, (label, value) in enumerate(meta):
            base = right + self.lead(9) * i + 3.2
            self.text(self.x1 - 62, base, label, 8.5, False, MUTED)
            self.text(self.x1, base, value, 9, i == 0, INK, "R")
        right += self.lead(9) * len(meta)
        self.y = max(left, right) + 4
        self.rule(self.y, color=ACCENT, width=0.5)
        self.y += 5

    def parties(self) -> None:
        inv, fmt, t = self.inv, self.fmt, self.t
        width = (self.x1 - self.x0 - 8) / 3
        blocks: list[tuple[str, list[tuple[str, bool]]]] = []
        customer = inv.customer
        bill = [(customer.name, True)]
        bill += [(x, False) for x in address_lines(customer.billing_address, fmt.country)]
        if customer.vat_id:
            bill.append((t("customer_vat_id", vat_id=customer.vat_id), False))
        if customer.tax_exempt_certificate:
            bill.append((t("tax_exempt", certificate=customer.tax_exempt_certificate), False))
        bill.append((customer.email, False))
        blocks.append((t("bill_to"), bill))
        site = inv.job.site
        if site:
            blocks.append((t("service_site"), [(site.name, True)]
                           + [(x, False) for x in address_lines(site.address, fmt.country)]))
        asset = inv.job.asset
        if asset:
            equipment = [(f"{asset.make} {asset.model}", True),
                         (self.tpl.term("asset_type", asset.type), False),
                         (t("serial", serial=asset.serial), False)]
            if asset.running_hours is not None:
                hours = fmt.number(Decimal(asset.running_hours))
                equipment.append((t("running_hours", hours=hours), False))
            blocks.append((t("equipment"), equipment))
        bottom = self.y
        for i, (title, rows) in enumerate(blocks):
            x = self.x0 + i * (width + 4)
            y = self.caption(x, self.y, title)
            for value, bold in rows:
                y = self.lines(x, y, self.wrap(value, width, 9, bold), 9, bold)
            bottom = max(bottom, y)
        self.y = bottom + 4

    def job_block(self) -> None:
        inv, fmt, job, t = self.inv, self.fmt, self.inv.job, self.t
        width = self.x1 - self.x0 - 8
        title = t("job_title", job=job.id, service=self.tpl.term("service_type", job.service_type),
                  completed=fmt.moment(job.completed_at))
        rows = [(self.wrap(title, width, 9, True), 9.0, True, INK)]
        if job.summary:
            rows.append((self.wrap(job.summary, width, 9), 9.0, False, INK))
        facts = []
        logged = {entry.technician for entry in job.labor}
        unlogged = [x for x in job.technicians if x.id not in logged]  # the rest are below
        if unlogged:
            crew = ", ".join(t("technician_entry", name=x.name, grade=x.grade)
                             for x in unlogged)
            facts.append(t("technicians" if len(unlogged) > 1 else "technician", crew=crew))
        if job.contract_id:
            facts.append(t("contract", contract=job.contract_id))
        if inv.po_number:
            facts.append(t("po", po=inv.po_number))
        times = self.time_record()
        if times:  # in the facts paragraph: a long record wraps, a short one shares a line
            facts.append(t("time_record") + ": " + ";   ".join(times))
        if facts:
            rows.append((self.wrap("   ·   ".join(facts), width, 8.5), 8.5, False, MUTED))
        height = sum(len(lines) * self.lead(size) for lines, size, _, _ in rows)
        height += 2 * (len(rows) - 1) + 6
        self.ensure(height)
        self.box(self.x0, self.y, self.x1 - self.x0, height)
        y = self.y + 3
        for lines, size, bold, color in rows:
            y = self.lines(self.x0 + 4, y, lines, size, bold, color) + 2
        self.y += height + 6

    def time_record(self) -> list[str]:
        """Each time entry: day, from-to in the entry's own offset, who (with grade), what,
        hours (an entry given as plain hours is dated on the day the job was completed)."""
        job, fmt, t = self.inv.job, self.fmt, self.t
        names = {x.id: t("technician_entry", name=x.name, grade=x.grade)
                 for x in job.technicians}
        out = []
        for entry in job.labor:
            who = names.get(entry.technician, entry.technician)
            what = self.tpl.term("line_kind", "labor" if entry.kind == "onsite" else entry.kind)
            if entry.start is not None and entry.end is not None:
                hours = Decimal((entry.end - entry.start).total_seconds()) / 3600
                out.append(t("time_entry", day=fmt.date(entry.start.date()),
                             start=f"{entry.start:%H:%M}", end=f"{entry.end:%H:%M}", name=who,
                             kind=what, hours=fmt.number(hours.quantize(Decimal("0.01")))))
            elif entry.hours is not None:
                out.append(t("time_entry_hours", day=fmt.date(job.completed_at.date()),
                             name=who, kind=what, hours=fmt.number(entry.hours)))
        return out

    # ---- line table ------------------------------------------------------------------
    def _columns(self) -> list[Column]:
        t = self.t
        fixed = [Column(t("col_sku"), 24, "L"), Column(t("col_qty"), 13, "R"),
                 Column(t("col_unit"), 11, "L"), Column(t("col_unit_price"), 22, "R"),
                 Column(t("col_tax"), 14, "R"),
                 Column(t("col_amount", currency=self.inv.currency), 27, "R")]
        rest = self.x1 - self.x0 - sum(c.width for c in fixed)
        return [Column(t("col_description"), rest, "L"), *fixed]

    def table_header(self) -> None:
        height = 6.5
        self.box(self.x0, self.y, self.x1 - self.x0, height)
        x = self.x0
        for col in self.columns:
            anchor = x + col.width - 1.5 if col.align == "R" else x + 1.5
            self.text(anchor, self.y + 4.3, col.label, 7.5, True, INK, col.align)
            x += col.width
        self.y += height

    def row_cells(self, line: InvoiceLine) -> list[list[str]]:
        fmt, cols = self.fmt, self.columns
        price = fmt.price(line.unit_price, line.amount.currency)
        item = line.sku or self.tpl.term("line_kind", line.kind)  # labor, fees: their kind
        return [self.wrap(self.described(line), cols[0].width - 3, 8.5),
                self.wrap(item, cols[1].width - 3, 8), [fmt.number(line.quantity)],
                [line.unit], [price], [fmt.rate(line.tax_rate)], [fmt.amount(line.amount)]]

    def described(self, line: InvoiceLine) -> str:
        """The description, and for a covered or discounted line why and what it lists at, so
        the client sees the value of the contract."""
        if not line.coverage:
            return line.description
        listed = ("" if line.list_unit_price is None else ", " + self.t(
            "list_price", price=self.fmt.price(line.list_unit_price, line.amount.currency)))
        return f"{line.description} ({line.coverage}{listed})"

    def table(self) -> None:
        self.ensure(6.5 + 12)
        self.in_table = True
        self.table_header()
        step = self.lead(8.5)
        for line in self.inv.lines:
            cells = self.row_cells(line)
            height = max(len(c) for c in cells) * step + 2.6
            if self.y + height > self.y_max:
                self.new_page(in_table=True)
            x = self.x0
            for col, cell in zip(self.columns, cells, strict=True):
                anchor = x + col.width - 1.5 if col.align == "R" else x + 1.5
                size = 8 if col is self.columns[1] else 8.5
                self.lines(anchor, self.y + 1.3, cell, size, False, INK if col.width > 40 or
                           col.align == "R" else MUTED, col.align)
                x += col.width
            self.y += height
            self.rule(self.y)
        self.in_table = False
        self.y += 5

    # ---- after the table -------------------------------------------------------------
    def totals(self) -> None:
        inv, fmt, t = self.inv, self.fmt, self.t
        breakdown = inv.tax_breakdown()
        height = max(4.2 + 5 * (len(breakdown) + 1), 5.2 * 2 + 12) + 6
        self.ensure(height)
        top = self.y
        # tax summary, left
        cols = [(self.x0, t("rate"), "L"), (self.x0 + 62, t("taxable_amount"), "R"),
                (self.x0 + 92, self.tax, "R")]
        y = self.caption(self.x0, top, t("tax_summary", tax=self.tax))
        for x, label, align in cols:
            self.text(x, y + 2.8, label, 7.5, True, MUTED, align)
        y += 4.6
        for sub in breakdown:
            rate = fmt.rate(sub.rate)
            if sub.category is not TaxCategory.STANDARD:  # say why there is no tax (Z, E, AE, O)
                rate = f"{rate} ({sub.category.value})"
            values = (rate, fmt.money(sub.taxable_amount), fmt.money(sub.tax))
            for (x, _, align), value in zip(cols, values, strict=True):
                self.text(x, y + 3, value, 8.5, False, INK, align)
            y += 4.6
        # totals, right
        label_x, y = self.x1 - 78, top
        for label, money in ((t("subtotal"), inv.subtotal), (self.tax, inv.tax_total)):
            self.text(label_x, y + 3.5, label, 9, False, MUTED)
            self.text(self.x1, y + 3.5, fmt.money(money), 9, False, INK, "R")
            y += 5.2
        self.rule(y + 0.8, label_x, self.x1, ACCENT, 0.5)
        self.text(label_x, y + 6.8, t("total", currency=inv.currency), 11, True, ACCENT)
        self.text(self.x1, y + 6.8, fmt.money(inv.total), 12, True, ACCENT, "R")
        if not inv.is_credit_note:
            self.text(self.x1, y + 11, t("due", date=fmt.date(inv.due_date)), 8, False, MUTED,
                      "R")
        self.y = top + height

    def payment(self) -> None:
        """The terms (or what a credit note credits) and the pay link; beside them, when the
        seller has them, the bank details."""
        context = self.context()
        bank = (self.tpl.render("payment", context)
                if self.inv.seller.payment and not self.inv.is_credit_note else [])
        half = (self.x1 - self.x0 - 8) / 2
        width = half if bank else self.x1 - self.x0
        body = [r for row in self.tpl.render("terms", context) for r in self.wrap(row, width, 9)]
        pay_label = self.t("pay_online")
        self.font(9, True)
        indent = max(22.0, self.width(pay_label) + 2)
        link = self.wrap(self.pay_url, width - indent, 9) if self.pay_url else []
        bank = [r for row in bank for r in self.wrap(row, half, 9)]
        step = self.lead(9)
        self.ensure(4.2 + step * max(len(body) + len(link), len(bank)) + 5)
        top = self.y
        caption = self.t("credit" if self.inv.is_credit_note else "payment")
        y = self.lines(self.x0, self.caption(self.x0, top, caption), body, 9)
        if link:
            self.text(self.x0, y + step * 0.7, pay_label, 9, True)
            for i, part in enumerate(link):
                w = self.text(self.x0 + indent, y + step * i + 2.6, part, 9, False, LINK)
                self.pdf.link(self.x0 + indent, y + step * i, w, step, self.pay_url or "")
            y += step * len(link)
        if bank:
            x = self.x0 + half + 8
            below = self.lines(x, self.caption(x, top, self.t("payment_instructions")), bank, 9)
            y = max(y, below)
        self.y = y + 5

    def notes(self) -> None:
        """Legal notes (reverse charge, exemptions, warranty claims) first, then the job's."""
        inv = self.inv
        said = list(inv.notes)
        said += [f"{category.value}: {reason}" for category, reason in inv.exemption_reasons
                 if reason not in said]
        if inv.job.notes:
            said.append(inv.job.notes)
        if not said:
            return
        body = [row for text in said for row in self.wrap(text, self.x1 - self.x0, 9)]
        self.ensure(4.2 + self.lead(9) * len(body) + 4)
        y = self.caption(self.x0, self.y, self.t("notes"))
        self.y = self.lines(self.x0, y, body, 9) + 4

    def signature(self) -> None:
        sig, fmt, t = self.inv.job.signature, self.fmt, self.t
        if sig:
            self.ensure(4.2 + 20)  # the box; the gap below it may fall off the page
            y = self.caption(self.x0, self.y, t("signature"))
            self.box(self.x0, y, 52, 20, fill=None, border=RULE)
            self.signature_image(sig.image_png_base64, self.x0 + 1, y + 1, 50, 18)
            facts = [sig.signer_role or "", t("signed", when=fmt.moment(sig.signed_at)),
                     t("signed_by_method", method=self.tpl.term("signature_method", sig.method))]
            below = self.lines(self.x0 + 57, y + 1, [sig.signer_name], 10, True)
            self.lines(self.x0 + 57, below + 0.5, [f for f in facts if f], 8.5, False, MUTED)
            self.y = y + 24
        if InvoiceFlag.UNSIGNED in self.inv.flags:
            width = self.x1 - self.x0
            body = self.wrap(t("not_signed_text"), width - 8, 8.5)
            height = 9 + self.lead(8.5) * len(body)
            self.ensure(height + 4)
            self.box(self.x0, self.y, width, height, fill=(255, 244, 229), border=WARN)
            self.text(self.x0 + 4, self.y + 5.6, t("not_signed"), 10, True, WARN)
            self.lines(self.x0 + 4, self.y + 7.4, body, 8.5)
            self.y += height + 4

    def signature_image(self, png_b64: str | None, x: float, y: float, w: float, h: float) -> None:
        try:
            png = base64.b64decode(png_b64 or "", validate=True)
        except binascii.Error:
            png = b""
        if not png_b64:
            self.text(x + w / 2, y + h / 2 + 1, self.t("no_signature_image"), 8, False, MUTED, "C")
        elif not self.image(png, x, y, w, h, center=True):
            self.text(x + w / 2, y + h / 2 + 1, self.t("signature_unreadable"), 8, False, MUTED,
                      "C")


def render_invoice_pdf(invoice: Invoice, *, pay_url: str | None = None,
                       logo_png: bytes | None = None, language: str = "en",
                       template_dir: Path | None = None) -> bytes:
    """The invoice as PDF bytes (A4, or Letter for US/CA sellers), its words in ``language``
    ("en" or "de") from the built-in templates or the tenant's overrides in ``template_dir``.
    Raises ``TemplateError`` (naming the file) when a template cannot be used."""
    return render_with(load_templates(template_dir, language), invoice, pay_url=pay_url,
                       logo_png=logo_png)


def render_with(templates: Templates, invoice: Invoice, *, pay_url: str | None = None,
                logo_png: bytes | None = None) -> bytes:
    """``render_invoice_pdf`` with templates already loaded (``pdf_check`` uses it)."""
    pdf = _Renderer(invoice, pay_url, logo_png, templates, full_fonts=False).render()
    if missing_glyphs(pdf):
        pdf = _Renderer(invoice, pay_url, logo_png, templates, full_fonts=True).render()
    return bytes(pdf.output())
