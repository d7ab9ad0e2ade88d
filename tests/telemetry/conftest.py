"""The telemetry tests run on both export paths of the service's own spans (MQ_TRACING_EXPORT)."""

from __future__ import annotations

import pytest

from service.telemetry.setup import EXPORT_PATHS


@pytest.fixture(params=EXPORT_PATHS)
def export_path(request: pytest.FixtureRequest) -> str:
    """lean: the service's spans are lean records; sdk: they are the SDK's spans."""
    return str(request.param)
