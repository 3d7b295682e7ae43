from __future__ import annotations

import pytest

from autoinvoice.triggers.events import JobCompleted, JobSigned, decode_json, parse_event
from autoinvoice.validation import InputError
from tests.helpers import completed, dumps, read_example


@pytest.mark.parametrize("name", ["job-emergency-repair.json", "job-preventive-maintenance.json",
                                  "job-signed.json"])
def test_shared_example_events_are_accepted_as_they_are(shared_dir, name):
    event = parse_event(decode_json(read_example(shared_dir, name)))
    assert isinstance(event, JobCompleted | JobSigned)


def test_numbers_are_read_as_decimals_never_floats():
    event = parse_event(decode_json(dumps(completed())))
    assert isinstance(event, JobCompleted)
    assert str(event.job.mileage.distance) == "38.5"
    assert type(event.job.mileage.distance).__name__ == "Decimal"


def _problems(event: dict) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_event(decode_json(dumps(event)))
    return info.value.problems


def test_every_bad_field_is_named():
    event = completed()
    event["occurred_at"] = "2026-11-20T21:47:00"  # no offset
    event["job"]["customer"]["email"] = "not-an-email"
    event["job"]["labor"][0]["end"] = "2026-11-20T16:00:00-06:00"  # before start
    event["job"]["parts"][1]["quantity"] = -1
    del event["job"]["completed_at"]
    problems = _problems(event)
    joined = "\n".join(problems)
    assert "occurred_at: Input should have timezone info" in joined
    assert "job.customer.email" in joined
    assert "job.labor[0]: end must be after start" in joined
    assert "job.parts[1].quantity" in joined
    assert "job.completed_at: Field required" in joined
    assert len(problems) == 5


def test_unknown_event_type_is_named():
    event = completed()
    event["type"] = "job.exploded"
    assert any(p.startswith("type: must be one of") for p in _problems(event))


def test_labor_for_an_unlisted_technician_is_rejected():
    event = completed()
    event["job"]["labor"][0]["technician"] = "T-99"
    assert any("T-99" in p for p in _problems(event))


def test_body_that_is_not_json_is_a_clear_error():
    with pytest.raises(InputError, match="not valid JSON"):
        decode_json("{nope")
