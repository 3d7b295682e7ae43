from tests.integration.conftest import api, env, harness, smtp_sink  # noqa: F401
