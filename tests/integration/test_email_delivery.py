"""Invoice e-mail against a real SMTP server (aiosmtpd on loopback), started per test."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from autoinvoice.documents.email import (
    DeliveryError,
    SmtpSettings,
    build_invoice_message,
    deliver_invoice,
    invoice_message_id,
    send_message,
)
from autoinvoice.documents.pdf import render_invoice_pdf
from tests.unit.test_pdf import german_invoice, us_invoice

SENDER = "invoices@northwind.example"
USER, PASSWORD = "billing", "s3cret-Pa55word!"
PAY_URL = "https://pay.example/i/NW-2026-00042"


@dataclass
class Inbox:
    port: int = 0
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class Collector:
    def __init__(self, inbox: Inbox, rcpt_reply: str | None = None) -> None:
        self.inbox, self.rcpt_reply = inbox, rcpt_reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.messages.append((list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"


class Authenticator:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        if ok:
            self.inbox.logins.append(USER)
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(rcpt_reply: str | None = None, *, auth: bool = False) -> Iterator[Inbox]:
    """A server on a free loopback port; with ``auth``, AUTH PLAIN/LOGIN without TLS."""
    inbox = Inbox()
    options: dict[str, Any] = (
        {"authenticator": Authenticator(inbox), "auth_require_tls": False} if auth else {})
    controller = Controller(Collector(inbox, rcpt_reply), hostname="127.0.0.1",
                            port=free_port(), **options)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def auth_inbox() -> Iterator[Inbox]:
    with smtp_server(auth=True) as box:
        yield box


def settings(port: int, **changes: Any) -> SmtpSettings:
    return dataclasses.replace(SmtpSettings("127.0.0.1", port, timeout=5.0), **changes)


def assert_no_secret(*texts: str) -> None:
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    for text in texts:
        assert PASSWORD not in text
        assert encoded not in text
        assert plain not in text


def test_invoice_arrives_with_subject_message_id_headers_and_the_same_pdf(inbox: Inbox) -> None:
    # given
    invoice = us_invoice()
    pdf = render_invoice_pdf(invoice, pay_url=PAY_URL)

    # when
    receipt = deliver_invoice(settings(inbox.port), invoice, sender=SENDER, pay_url=PAY_URL,
                              pdf=pdf)

    # then
    [(recipients, message)] = inbox.messages
    assert recipients == ["ap@acme-plastics.example"]
    assert receipt.recipients == ("ap@acme-plastics.example",)
    assert message["Subject"] == (
        "Invoice NW-2026-00042 from Northwind Compressed Air Services LLC — WO-10482")
    assert message["From"].addresses[0].display_name == "Northwind Compressed Air Services LLC"
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["Reply-To"].addresses[0].addr_spec == "billing@northwind.example"
    assert message["Message-ID"] == receipt.message_id == invoice_message_id(invoice, SENDER)
    assert message["X-Autoinvoice-Job"] == "WO-10482"
    assert message["X-Autoinvoice-Invoice"] == "NW-2026-00042"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "NW-2026-00042.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf
    assert receipt.pdf_sha256 == hashlib.sha256(pdf).hexdigest()
    assert receipt.size == len(pdf)


def test_body_has_text_and_html_with_total_due_date_pay_link_and_every_line(inbox: Inbox
                                                                          ) -> None:
    invoice = us_invoice()
    deliver_invoice(settings(inbox.port), invoice, sender=SENDER, pay_url=PAY_URL)

    [(_, message)] = inbox.messages
    text = message.get_body(("plain",))
    markup = message.get_body(("html",))
    assert text is not None
    assert markup is not None
    plain, rich = text.get_content(), markup.get_content()
    for expected in ("Dear Acme Plastics Inc.", "$2,519.50", "Dec 21, 2026", PAY_URL,
                     "Atlas Copco GA37 VSD+, serial API726410", "PO-77813"):
        assert expected in plain
    for line in invoice.lines:
        assert line.description in plain
    assert f'href="{PAY_URL}"' in rich
    assert "$2,519.50" in rich


def test_german_invoice_mail_keeps_umlauts_and_euro(inbox: Inbox) -> None:
    invoice = german_invoice()
    deliver_invoice(settings(inbox.port), invoice, sender="rechnung@ks-sued.example")

    [(recipients, message)] = inbox.messages
    assert recipients == ["rechnung@feldmann-brauerei.example"]
    assert message["Subject"] == (
        "Invoice KS-2026-00317 from Kompressor-Service Süd GmbH — AU-2026-3391")
    body = message.get_body(("plain",))
    assert body is not None
    assert "2.140,46 €" in body.get_content()
    assert "Reply-To" not in message  # the seller's address is the sender


def test_message_id_is_stable_across_resends_and_changes_with_the_revision() -> None:
    invoice = us_invoice()
    first = build_invoice_message(invoice, b"%PDF-1", sender=SENDER)
    again = build_invoice_message(invoice, b"%PDF-1", sender=SENDER)
    revised = build_invoice_message(dataclasses.replace(invoice, revision=2), b"%PDF-1",
                                    sender=SENDER)
    assert first["Message-ID"] == again["Message-ID"]
    assert revised["Message-ID"] != first["Message-ID"]
    assert first["Message-ID"].startswith("<autoinvoice.WO-10482.r1.")
    assert first["Message-ID"].endswith("@northwind.example>")


def test_login_when_a_username_is_set(auth_inbox: Inbox) -> None:
    deliver_invoice(settings(auth_inbox.port, username=USER, password=PASSWORD), us_invoice(),
                    sender=SENDER)
    assert auth_inbox.logins == [USER]
    assert len(auth_inbox.messages) == 1


def test_wrong_password_is_permanent_and_the_password_is_never_shown(
        auth_inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    # given
    config = settings(auth_inbox.port, username=USER, password=PASSWORD + "x")

    # when
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
        deliver_invoice(config, us_invoice(), sender=SENDER)

    # then
    error = caught.value
    assert error.transient is False
    assert error.smtp_code == 535
    assert error.__cause__ is None
    assert_no_secret(str(error), repr(error), caplog.text, repr(config))
    assert "password" not in repr(config).lower()
    assert not auth_inbox.messages


def test_rejected_recipient_is_permanent() -> None:
    with smtp_server(rcpt_reply="550 5.1.1 <ap@acme-plastics.example>: mailbox unavailable"
                     ) as box, pytest.raises(DeliveryError) as caught:
        deliver_invoice(settings(box.port), us_invoice(), sender=SENDER)
    assert caught.value.transient is False
    assert caught.value.smtp_code == 550
    assert "mailbox unavailable" in str(caught.value)


def test_greylisted_recipient_is_transient() -> None:
    with smtp_server(rcpt_reply="451 4.7.1 greylisted, try again later") as box, \
            pytest.raises(DeliveryError) as caught:
        deliver_invoice(settings(box.port), us_invoice(), sender=SENDER)
    assert caught.value.transient is True
    assert caught.value.smtp_code == 451


def test_connection_refused_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver_invoice(settings(free_port(), password=PASSWORD, username=USER), us_invoice(),
                        sender=SENDER)
    assert caught.value.transient is True
    assert_no_secret(str(caught.value))


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            deliver_invoice(settings(port, timeout=0.3), us_invoice(), sender=SENDER)
    assert caught.value.transient is True


def test_starttls_against_a_server_without_it_is_permanent(inbox: Inbox) -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver_invoice(settings(inbox.port, starttls=True), us_invoice(), sender=SENDER)
    assert caught.value.transient is False
    assert not inbox.messages


def test_customer_without_an_address_fails_permanently_before_connecting(inbox: Inbox) -> None:
    invoice = us_invoice()
    nobody = dataclasses.replace(invoice, customer=dataclasses.replace(invoice.customer, email=""))
    with pytest.raises(DeliveryError) as caught:
        deliver_invoice(settings(inbox.port), nobody, sender=SENDER)
    assert caught.value.transient is False
    assert not inbox.messages


def test_send_message_returns_the_message_id(inbox: Inbox) -> None:
    message = build_invoice_message(us_invoice(), b"%PDF-1.4 tiny", sender=SENDER)
    assert send_message(settings(inbox.port), message) == message["Message-ID"]


def test_ssl_and_starttls_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        SmtpSettings("smtp.example", 465, ssl=True, starttls=True)
