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

from autoinvoice.documents.pdf import Formats, address_lines, humanize, render_invoice_pdf
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
    """A file sent beside the PDF (an e-invoice); ``label`` names it in the e-mail text."""

    filename: str
    content: bytes
    media_type: str  # "application/xml"
    label: str  # "XRechnung e-invoice"


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


def _document(invoice: Invoice) -> str:
    return "credit note" if invoice.is_credit_note else "invoice"


def _address(name: str, email: str, role: str) -> Address:
    if "@" not in email:
        raise ValueError(f"{role} e-mail address {email!r} is not an address")
    return Address(display_name=name, addr_spec=email.strip())


def _filename(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", number).strip(".-") + ".pdf"


def build_invoice_message(invoice: Invoice, pdf: bytes, *, sender: str,
                          pay_url: str | None = None,
                          extras: Sequence[Attachment] = ()) -> EmailMessage:
    """To the customer, from the seller's name at ``sender``, the PDF attached (and the
    ``extras``: the structured e-invoice a customer receives beside it).

    Raises ``ValueError`` for an invoice without a number or without usable addresses.
    """
    if not invoice.number:
        raise ValueError(f"invoice for job {invoice.job_id} has no number yet")
    seller = invoice.seller
    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(seller.legal_name, sender, "sender")
    message["To"] = _address(invoice.customer.name, invoice.customer.email, "customer")
    if seller.email and seller.email.strip().lower() != sender.strip().lower():
        message["Reply-To"] = _address(seller.legal_name, seller.email, "seller")
    message["Subject"] = (f"{_document(invoice).capitalize()} {invoice.number} from "
                          f"{seller.legal_name} — {invoice.job_id}")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = invoice_message_id(invoice, sender)
    message["X-Autoinvoice-Job"] = invoice.job_id
    message["X-Autoinvoice-Invoice"] = invoice.number
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(_text_body(invoice, pay_url, extras))
    message.add_alternative(_html_body(invoice, pay_url, extras), subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=_filename(invoice.number))
    for extra in extras:
        maintype, _, subtype = extra.media_type.partition("/")
        message.add_attachment(extra.content, maintype=maintype, subtype=subtype,
                               filename=extra.filename)
    return message


def _facts(invoice: Invoice, pay_url: str | None) -> list[tuple[str, str]]:
    fmt, job = Formats.for_invoice(invoice), invoice.job
    facts = []
    if job.asset:
        a = job.asset
        hours = ("" if a.running_hours is None
                 else f", {fmt.number(Decimal(a.running_hours))} running hours")
        facts.append(("Equipment", f"{a.make} {a.model}, serial {a.serial}{hours}"))
    if job.site:
        place = ", ".join([job.site.name, *address_lines(job.site.address, fmt.country)])
        facts.append(("Site", place))
    if invoice.po_number:
        facts.append(("PO number", invoice.po_number))
    if invoice.is_credit_note:
        facts.append(("Credits invoice", invoice.corrects or "-"))
        facts.append(("Amount credited", f"{fmt.money(invoice.total)} ({invoice.currency})"))
        return facts
    facts.append(("Amount due", f"{fmt.money(invoice.total)} ({invoice.currency})"))
    facts.append(("Due date", fmt.date(invoice.due_date)))
    if pay_url:
        facts.append(("Pay online", pay_url))
    return facts


def _intro(invoice: Invoice) -> str:
    fmt, job = Formats.for_invoice(invoice), invoice.job
    credits = f", which credits invoice {invoice.corrects} in full," if invoice.corrects else ""
    return (f"please find attached {_document(invoice)} {invoice.number}{credits} for service "
            f"job {job.id} ({humanize(job.service_type)}), completed "
            f"{fmt.moment(job.completed_at)}.")


def _summary(invoice: Invoice) -> list[tuple[str, str]]:
    """(what, amount) per line, then subtotal, tax and total."""
    fmt = Formats.for_invoice(invoice)
    rows = []
    for line in invoice.lines:
        price = fmt.price(line.unit_price, invoice.currency)
        rows.append((f"{line.description}: {fmt.number(line.quantity)} {line.unit} x {price}",
                     fmt.money(line.amount)))
    rows += [("Subtotal", fmt.money(invoice.subtotal)),
             (fmt.tax_label(), fmt.money(invoice.tax_total)),
             (f"Total {invoice.currency}", fmt.money(invoice.total))]
    return rows


def _signature_lines(invoice: Invoice) -> list[str]:
    seller = invoice.seller
    return [seller.legal_name, ", ".join(address_lines(seller.address))]


def _extras_sentence(extras: Sequence[Attachment]) -> str:
    return " ".join(f"The {x.label} is attached as {x.filename}." for x in extras)


def _text_body(invoice: Invoice, pay_url: str | None, extras: Sequence[Attachment] = ()
               ) -> str:
    width = max(len(label) for label, _ in _facts(invoice, pay_url)) + 2
    out = [f"Dear {invoice.customer.name},", "", _intro(invoice), ""]
    out += [f"  {label + ':':<{width}}{value}" for label, value in _facts(invoice, pay_url)]
    out += ["", "Summary"]
    summary = _summary(invoice)
    out += [f"  - {what}: {amount}" for what, amount in summary[:-3]]
    out += [f"  {what}: {amount}" for what, amount in summary[-3:]]
    contact = invoice.seller.email or "this address"
    what = _document(invoice)
    out += ["", f"The itemized {what} is attached as {_filename(invoice.number or '')}.",
            *([_extras_sentence(extras)] if extras else []),
            f"Questions about this {what}? Reply to this e-mail or write to {contact}.", "",
            "Kind regards,", *_signature_lines(invoice)]
    return "\n".join(out) + "\n"


def _html_body(invoice: Invoice, pay_url: str | None, extras: Sequence[Attachment] = ()
               ) -> str:
    e = html.escape
    cell = 'style="padding:4px 8px;border-bottom:1px solid #dee2e6"'
    facts = "".join(f'<tr><td {cell}><b>{e(k)}</b></td><td {cell}>{e(v)}</td></tr>'
                    for k, v in _facts(invoice, pay_url) if k != "Pay online")
    summary = _summary(invoice)
    rows = "".join(f'<tr><td {cell}>{e(w)}</td><td {cell} align="right">{e(a)}</td></tr>'
                   for w, a in summary[:-1])
    total = summary[-1]
    rows += (f'<tr><td {cell}><b>{e(total[0])}</b></td>'
             f'<td {cell} align="right"><b>{e(total[1])}</b></td></tr>')
    button = (f'<p><a href="{e(pay_url, quote=True)}" style="display:inline-block;'
              'padding:10px 18px;background:#183e6e;color:#fff;text-decoration:none;'
              f'border-radius:4px">Pay invoice {e(invoice.number or "")} online</a></p>'
              if pay_url else "")
    sign = "<br>".join(e(x) for x in _signature_lines(invoice))
    return (
        '<!doctype html><html><body style="font-family:Helvetica,Arial,sans-serif;'
        'color:#212529;font-size:14px">'
        f"<p>Dear {e(invoice.customer.name)},</p><p>{e(_intro(invoice))}</p>"
        f'<table style="border-collapse:collapse">{facts}</table>{button}'
        f'<h3 style="font-size:15px">Summary</h3>'
        f'<table style="border-collapse:collapse;min-width:60%">{rows}</table>'
        f"<p>The itemized {_document(invoice)} is attached as "
        f"{e(_filename(invoice.number or ''))}. {e(_extras_sentence(extras))}</p>"
        f"<p>Kind regards,<br>{sign}</p></body></html>\n"
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
                    extras: Sequence[Attachment] = ()) -> DeliveryReceipt:
    """Renders (unless ``pdf`` is given), builds and sends the invoice e-mail."""
    document = pdf if pdf is not None else render_invoice_pdf(invoice, pay_url=pay_url)
    try:
        message = build_invoice_message(invoice, document, sender=sender, pay_url=pay_url,
                                        extras=extras)
    except (ValueError, IndexError) as exc:
        raise DeliveryError(f"cannot address the invoice e-mail: {exc}", False) from exc
    recipients = tuple(addr for _, addr in getaddresses(message.get_all("To", [])))
    message_id = send_message(settings, message)
    return DeliveryReceipt(message_id, recipients, hashlib.sha256(document).hexdigest(),
                           len(document))
