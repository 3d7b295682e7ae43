"""The demo bills MYOB (sold in Australia and New Zealand) as an Australian company would;
every other platform runs the demo unchanged."""

from __future__ import annotations

from decimal import Decimal

from autoinvoice.config import default_config_text, parse_config
from autoinvoice.demo_jobs import day_of_jobs
from autoinvoice.demo_regions import localise, localise_events


def test_the_myob_demo_is_an_australian_company_billing_gst() -> None:
    config = localise(parse_config(default_config_text(), "demo"), "myob")
    assert list(config.tenants) == ["northwind"]  # the German company keeps no MYOB file
    tenant = config.tenant("northwind")
    assert (tenant.address.country, tenant.currency, tenant.tax.rate) == ("AU", "AUD",
                                                                          Decimal("0.1"))
    events = localise_events(day_of_jobs(), "myob")
    assert events
    assert {e["tenant"] for e in events} == {"northwind"}
    addresses = [e["job"]["customer"]["billing_address"] for e in events if "job" in e]
    assert {a["country"] for a in addresses} == {"AU"}


def test_other_platforms_run_the_demo_unchanged() -> None:
    config = parse_config(default_config_text(), "demo")
    assert localise(config, "xero") is config
    events = day_of_jobs()
    assert localise_events(events, "xero") is events
