"""The sandbox platform has no send call: we e-mail our own PDF over real SMTP."""

from __future__ import annotations

from tests.helpers import completed, signed


def test_sandbox_invoice_is_emailed_with_its_pdf(harness, smtp_sink):
    harness.ingest(completed("WO-M1", tenant="mail"))
    harness.ingest(signed("WO-M1", tenant="mail"))
    harness.run()
    shown = harness.show("WO-M1", tenant="mail")
    assert shown["state"] == "sent"
    assert shown["delivery"]["via"] == "email"
    assert len(smtp_sink.messages) == 1
    recipients, message = smtp_sink.messages[0]
    assert recipients == ["ap@acme-plastics.example"]
    assert shown["number"] in message["Subject"]
    attachments = [p for p in message.iter_attachments()
                   if p.get_content_type() == "application/pdf"]
    assert len(attachments) == 1
    from pathlib import Path

    assert attachments[0].get_content() == Path(shown["delivery"]["pdf"]).read_bytes()


def test_smtp_down_is_retried_and_later_delivered(harness, smtp_sink):
    config = harness.app.config
    harness.app.config = config.model_copy(
        update={"smtp": config.smtp.model_copy(update={"port": 1})})  # nothing listens on 1
    harness.ingest(completed("WO-M2", tenant="mail"))
    harness.ingest(signed("WO-M2", tenant="mail"))
    harness.run()
    row = harness.row("WO-M2", tenant="mail")
    assert row.doc_state == "created"
    assert row.attempts == 1
    assert row.last_error
    harness.app.config = config
    harness.clock.advance(minutes=5)
    harness.run()
    assert harness.row("WO-M2", tenant="mail").doc_state == "sent"
    assert len(smtp_sink.messages) == 1
