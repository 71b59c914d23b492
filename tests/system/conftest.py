"""System fixtures: `membership serve` as a real process."""

from __future__ import annotations

import pytest

from tests.support.processes import ServiceProcess


@pytest.fixture
def serve():
    """Start `membership serve` with an environment (and ServiceProcess's workers and
    threads); every server it started is stopped when the test ends, passed or not. A test
    that checks what a stop leaves behind stops its server itself first."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str], **options) -> ServiceProcess:
        service = ServiceProcess(env, **options)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
