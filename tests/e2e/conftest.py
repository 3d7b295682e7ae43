from tests.integration.conftest import env, harness, smtp_sink  # noqa: F401 - shared fixtures
