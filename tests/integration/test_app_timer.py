"""The composition root hands its Timer to every connector, even one that has not slept yet."""

from __future__ import annotations

from tests.integration.conftest import Harness


def test_a_virtual_timer_that_has_not_slept_yet_is_the_connectors_timer(
        harness: Harness) -> None:
    # given a VirtualTimer with no wait recorded yet (an empty list, so falsy)
    assert harness.sleeps == []
    # then the connectors' settings carry it, not the system's clock
    for tenant in ("northwind", "mail"):
        assert harness.app.connector_settings(tenant).timer is harness.sleeps
