"""The platform journal: collects only inside ``collecting()``, masks credential fields."""

from __future__ import annotations

from autoinvoice.connectors import journal


def note(body: str = "{}") -> None:
    journal.note(platform="p", method="POST", url="https://x/y?api_key=k1", request_headers={},
                 request_body=body, status=200, request_id="r1", response_body=body,
                 elapsed_ms=1.0)


def test_nothing_is_collected_outside_a_journal():
    note()
    assert journal.drain() == []
    assert not journal.active()


def test_drain_takes_what_was_collected_so_far_and_collecting_goes_on():
    with journal.collecting() as entries:
        note()
        assert [e["request_id"] for e in journal.drain()] == ["r1"]
        assert entries == []
        note()
        assert len(entries) == 1


def test_credential_fields_are_masked_in_json_forms_and_urls_whatever_their_case():
    assert journal.mask_fields('{"access_token": "abc", "Refresh_Token":"d\\"e", "n": 1}') == (
        '{"access_token": "***", "Refresh_Token":"***", "n": 1}')
    assert journal.mask_fields("grant_type=refresh_token&refresh_token=xyz&CLIENT_SECRET=s") == (
        "grant_type=refresh_token&refresh_token=***&CLIENT_SECRET=***")
    with journal.collecting() as entries:
        note()
    assert entries[0]["url"] == "https://x/y?api_key=***"


def test_bodies_without_credential_fields_are_left_exactly_as_they_were():
    body = '{"idempotency_key": "k", "tokens_used": 3, "description": "secret sauce"}'
    assert journal.mask_fields(body) == body
