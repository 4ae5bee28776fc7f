from tests.integration.conftest import simulator_factory, topic_prefix  # noqa: F401 - shared fixtures
