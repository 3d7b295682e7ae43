"""The invoice by e-mail: build the message (text, HTML, the PDF) and send it over SMTP.

``deliver_invoice`` does both and returns a ``DeliveryReceipt``. The Message-ID is derived
from tenant, job and invoice revision (``invoice_message_id``), so a message re-sent after
a crash carries the same id and the recipient's system (or an operator) can recognise it.

Errors: everything that goes wrong while sending is a ``DeliveryError``; the pipeline
decides by ``transient`` alone::

    DeliveryError(transient=True)    connection refused/reset, DNS, timeouts, the server
                                     hanging up, any 4xx reply (greylisting, 421, 451, 454)
    DeliveryError(transient=False)   any 5xx reply (recipient rejected, 535 bad credentials),
                                     TLS/STARTTLS/AUTH not possible, no usable address

The SMTP password never appears in an error or a log line: server replies are scrubbed of
it (also in its base64 AUTH forms) and the original exception is not chained.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses

from autoinvoice.documents.formats import file_stem
from autoinvoice.documents.pdf import Formats, address_lines, render_invoice_pdf
from autoinvoice.documents.templates import Templates, load_templates
from autoinvoice.domain.invoice import Invoice

__all__ = ["Attachment", "DeliveryError", "DeliveryReceipt", "SmtpSettings",
           "build_invoice_message", "deliver_invoice", "invoice_message_id", "send_message"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.ssl and self.starttls:
            raise ValueError("SMTP: choose implicit TLS (ssl) or STARTTLS, not both")


class DeliveryError(Exception):
    """Sending failed; ``transient`` says whether trying again later can help."""

    def __init__(self, message: str, transient: bool, *, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.smtp_code = smtp_code


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent beside the PDF (an e-invoice)."""

    filename: str
    content: bytes
    media_type: str  # "application/xml"
    kind: str  # a format (ubl, cii, xrechnung...): named by label email_einvoice_<kind>


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    message_id: str
    recipients: tuple[str, ...]
    pdf_sha256: str
    size: int  # of the attached PDF, in bytes


# --------------------------------------------------------------------------- message
class _Policy(EmailPolicy):
    """The default policy, except that Subject and Message-ID are not folded below 998
    characters: CPython folds ``"… LLC — WO-1"`` as ``"… LLC \\n =?utf-8?b?4oCU?= WO-1"``
    (a double space once unfolded), and some parsers keep the fold's space in a Message-ID."""

    _UNFOLDED = frozenset({"subject", "message-id"})

    def fold(self, name: str, value: str) -> str:
        policy = self.clone(max_line_length=998) if name.lower() in self._UNFOLDED else self
        folded: str = EmailPolicy.fold(policy, name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        policy = self.clone(max_line_length=998) if name.lower() in self._UNFOLDED else self
        folded: bytes = EmailPolicy.fold_binary(policy, name, value)
        return folded


_POLICY = _Policy()


def invoice_message_id(invoice: Invoice, sender: str) -> str:
    """``<autoinvoice.{job}.r{revision}.{hash}@{sender domain}>``; the same for every resend."""
    key = f"{invoice.tenant}\x1f{invoice.job_id}\x1f{invoice.revision}"
    kind = ".cn" if invoice.is_credit_note else ""  # a credit note is its own message
    digest = hashlib.sha256((key + kind).encode()).hexdigest()[:20]
    job = re.sub(r"[^A-Za-z0-9_-]+", "_", invoice.job_id)[:40] or "job"
    domain = sender.rpartition("@")[2].strip().lower()
    if not re.fullmatch(r"[a-z0-9.-]+", domain) or ".." in domain:
        domain = "autoinvoice.invalid"
    return f"<autoinvoice.{job}.r{invoice.revision}{kind}.{digest}@{domain}>"


def _address(name: str, email: str, role: str) -> Address:
    if "@" not in email:
        raise ValueError(f"{role} e-mail address {email!r} is not an address")
    return Address(display_name=name, addr_spec=email.strip())


def _filename(number: str) -> str:
    return file_stem(number) + ".pdf"


def build_invoice_message(invoice: Invoice, pdf: bytes, *, sender: str,
                          pay_url: str | None = None, extras: Sequence[Attachment] = (),
                          templates: Templates | None = None) -> EmailMessage:
    """To the customer, from the seller's name at ``sender``, the PDF attached (and the
    ``extras``: the structured e-invoice a customer receives beside it), worded from the
    ``templates`` (the tenant's language and overrides; English by default).

    Raises ``ValueError`` for an invoice without a number or without usable addresses.
    """
    if not invoice.number:
        raise ValueError(f"invoice for job {invoice.job_id} has no number yet")
    words = _Wording(invoice, pay_url, extras, templates or load_templates(None, "en"))
    seller = invoice.seller
    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(seller.legal_name, sender, "sender")
    message["To"] = _address(invoice.customer.name, invoice.customer.email, "customer")
    if seller.email and seller.email.strip().lower() != sender.strip().lower():
        message["Reply-To"] = _address(seller.legal_name, seller.email, "seller")
    message["Subject"] = words.subject()
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = invoice_message_id(invoice, sender)
    message["X-Autoinvoice-Job"] = invoice.job_id
    message["X-Autoinvoice-Invoice"] = invoice.number
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(words.text_body())
    message.add_alternative(words.html_body(), subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=_filename(invoice.number))
    for extra in extras:
        maintype, _, subtype = extra.media_type.partition("/")
        message.add_attachment(extra.content, maintype=maintype, subtype=subtype,
                               filename=extra.filename)
    return message


class _Wording:
    """The e-mail's words: labels from the templates, numbers and dates in their formats."""

    def __init__(self, invoice: Invoice, pay_url: str | None, extras: Sequence[Attachment],
                 templates: Templates) -> None:
        self.inv, self.pay_url, self.extras, self.tpl = invoice, pay_url, extras, templates
        self.t = templates.label
        self.fmt = Formats.for_invoice(invoice, templates.language)
        kind = "credit_note" if invoice.is_credit_note else "invoice"
        self.document = self.t(f"email_document_{kind}")

    def subject(self) -> str:
        inv = self.inv
        return self.t("email_subject", document=self.document[:1].upper() + self.document[1:],
                      number=inv.number, seller=inv.seller.legal_name, job=inv.job_id)

    def facts(self) -> list[tuple[str, str]]:
        inv, fmt, job, t = self.inv, self.fmt, self.inv.job, self.t
        facts = []
        if job.asset:
            a = job.asset
            hours = ("" if a.running_hours is None else
                     t("email_running_hours", hours=fmt.number(Decimal(a.running_hours))))
            facts.append((t("email_equipment"), t("email_equipment_value", make=a.make,
                                                  model=a.model, serial=a.serial) + hours))
        if job.site:
            place = ", ".join([job.site.name, *address_lines(job.site.address, fmt.country)])
            facts.append((t("email_site"), place))
        if inv.po_number:
            facts.append((t("email_po"), inv.po_number))
        if inv.is_credit_note:
            facts.append((t("email_credits_invoice"), inv.corrects or "-"))
            facts.append((t("email_amount_credited"), f"{fmt.money(inv.total)} ({inv.currency})"))
            return facts
        facts.append((t("email_amount_due"), f"{fmt.money(inv.total)} ({inv.currency})"))
        facts.append((t("email_due_date"), fmt.date(inv.due_date)))
        if self.pay_url:
            facts.append((t("email_pay_online"), self.pay_url))
        return facts

    def intro(self) -> str:
        inv, job = self.inv, self.inv.job
        credits = self.t("email_credits", invoice=inv.corrects) if inv.corrects else ""
        return self.t("email_intro", document=self.document, number=inv.number, credits=credits,
                      job=job.id, service=self.tpl.term("service_type", job.service_type),
                      completed=self.fmt.moment(job.completed_at))

    def summary(self) -> list[tuple[str, str]]:
        """(what, amount) per line, then subtotal, tax and total."""
        inv, fmt, t = self.inv, self.fmt, self.t
        rows = []
        for line in inv.lines:
            price = fmt.price(line.unit_price, inv.currency)
            rows.append((f"{line.description}: {fmt.number(line.quantity)} {line.unit} x {price}",
                         fmt.money(line.amount)))
        rows += [(t("subtotal"), fmt.money(inv.subtotal)),
                 (t(f"tax_{fmt.tax_kind()}"), fmt.money(inv.tax_total)),
                 (t("total", currency=inv.currency), fmt.money(inv.total))]
        return rows

    def signature_lines(self) -> list[str]:
        seller = self.inv.seller
        return [seller.legal_name, ", ".join(address_lines(seller.address))]

    def attached(self) -> list[str]:
        out = [self.t("email_attached", document=self.document,
                      filename=_filename(self.inv.number or ""))]
        out += [self.t("email_attached_extra", what=self.t(f"email_einvoice_{x.kind}"),
                       filename=x.filename) for x in self.extras]
        return out

    def text_body(self) -> str:
        t, facts = self.t, self.facts()
        width = max(len(label) for label, _ in facts) + 2
        out = [t("email_greeting", name=self.inv.customer.name), "", self.intro(), ""]
        out += [f"  {label + ':':<{width}}{value}" for label, value in facts]
        out += ["", t("email_summary")]
        summary = self.summary()
        out += [f"  - {what}: {amount}" for what, amount in summary[:-3]]
        out += [f"  {what}: {amount}" for what, amount in summary[-3:]]
        contact = self.inv.seller.email or t("email_this_address")
        out += ["", " ".join(self.attached()),
                t("email_questions", document=self.document, contact=contact), "",
                t("email_regards"), *self.signature_lines()]
        return "\n".join(out) + "\n"

    def html_body(self) -> str:
        e, t = html.escape, self.t
        cell = 'style="padding:4px 8px;border-bottom:1px solid #dee2e6"'
        pay_label = t("email_pay_online")
        facts = "".join(f'<tr><td {cell}><b>{e(k)}</b></td><td {cell}>{e(v)}</td></tr>'
                        for k, v in self.facts() if k != pay_label)
        summary = self.summary()
        rows = "".join(f'<tr><td {cell}>{e(w)}</td><td {cell} align="right">{e(a)}</td></tr>'
                       for w, a in summary[:-1])
        total = summary[-1]
        rows += (f'<tr><td {cell}><b>{e(total[0])}</b></td>'
                 f'<td {cell} align="right"><b>{e(total[1])}</b></td></tr>')
        button = (f'<p><a href="{e(self.pay_url, quote=True)}" style="display:inline-block;'
                  'padding:10px 18px;background:#183e6e;color:#fff;text-decoration:none;'
                  f'border-radius:4px">{e(t("email_pay_button", number=self.inv.number))}'
                  '</a></p>' if self.pay_url else "")
        sign = "<br>".join(e(x) for x in self.signature_lines())
        return (
            '<!doctype html><html><body style="font-family:Helvetica,Arial,sans-serif;'
            'color:#212529;font-size:14px">'
            f"<p>{e(t('email_greeting', name=self.inv.customer.name))}</p>"
            f"<p>{e(self.intro())}</p>"
            f'<table style="border-collapse:collapse">{facts}</table>{button}'
            f'<h3 style="font-size:15px">{e(t("email_summary"))}</h3>'
            f'<table style="border-collapse:collapse;min-width:60%">{rows}</table>'
            f"<p>{e(' '.join(self.attached()))}</p>"
            f"<p>{e(t('email_regards'))}<br>{sign}</p></body></html>\n"
        )


# --------------------------------------------------------------------------- sending
def _redact(text: str, settings: SmtpSettings) -> str:
    secret = settings.password
    if not secret:
        return text
    user = settings.username or ""
    forms = {secret, base64.b64encode(secret.encode()).decode(),
             base64.b64encode(f"\0{user}\0{secret}".encode()).decode()}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _classify(exc: Exception, settings: SmtpSettings) -> DeliveryError:
    where = f"SMTP {settings.host}:{settings.port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        said = "; ".join(f"{rcpt}: {code} {_reply_text(reply)}"
                         for rcpt, (code, reply) in exc.recipients.items())
        transient = all(400 <= code < 500 for code in codes)
        return DeliveryError(_redact(f"{where} refused the recipient ({said})", settings),
                             transient, smtp_code=codes[0] if codes else None)
    if isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, _reply_text(exc.smtp_error)
        what = "rejected the login" if isinstance(exc, smtplib.SMTPAuthenticationError) else (
            "refused the message")
        return DeliveryError(_redact(f"{where} {what}: {code} {reply}", settings),
                             not 500 <= code < 600, smtp_code=code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where} closed the connection: {_redact(str(exc), settings)}",
                             True)
    if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        # STARTTLS or AUTH unsupported, certificate rejected: configuration, not luck
        return DeliveryError(f"{where}: {type(exc).__name__}: {_redact(str(exc), settings)}",
                             False)
    return DeliveryError(f"{where} unreachable: {type(exc).__name__}: "
                         f"{_redact(str(exc), settings)}", True)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.ssl:
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                context=ssl.create_default_context())
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)


def _quit(smtp: smtplib.SMTP) -> None:
    # After the server has accepted the message nothing may turn it into a failure
    # (a retry would send it twice), so QUIT problems only close the socket.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def send_message(settings: SmtpSettings, message: EmailMessage) -> str:
    """Sends ``message``; returns its Message-ID. Raises ``DeliveryError``."""
    message_id = str(message["Message-ID"] or "")
    if not message_id:
        raise ValueError("message has no Message-ID (build it with build_invoice_message)")
    try:
        smtp = _connect(settings)
        try:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(message)
        finally:
            _quit(smtp)
    except OSError as exc:  # smtplib.SMTPException and ssl.SSLError are OSErrors too
        error = _classify(exc, settings)
        log.warning("e-mail %s not sent: %s (transient=%s)", message_id, error, error.transient)
        raise error from None
    if refused:
        log.warning("e-mail %s: some recipients refused: %s", message_id, sorted(refused))
    log.info("e-mail %s sent via %s:%s", message_id, settings.host, settings.port)
    return message_id


def deliver_invoice(settings: SmtpSettings, invoice: Invoice, *, sender: str,
                    pay_url: str | None = None, pdf: bytes | None = None,
                    extras: Sequence[Attachment] = (),
                    templates: Templates | None = None) -> DeliveryReceipt:
    """Renders (unless ``pdf`` is given), builds and sends the invoice e-mail."""
    document = pdf if pdf is not None else render_invoice_pdf(
        invoice, pay_url=pay_url, language=templates.language if templates else "en")
    try:
        message = build_invoice_message(invoice, document, sender=sender, pay_url=pay_url,
                                        extras=extras, templates=templates)
    except (ValueError, IndexError) as exc:
        raise DeliveryError(f"cannot address the invoice e-mail: {exc}", False) from exc
    recipients = tuple(addr for _, addr in getaddresses(message.get_all("To", [])))
    message_id = send_message(settings, message)
    return DeliveryReceipt(message_id, recipients, hashlib.sha256(document).hexdigest(),
                           len(document))
