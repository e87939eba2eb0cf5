"""Fixtures for the sink tests: a plain finding, and one per hostile payload."""

from __future__ import annotations

import pytest
from finding_builders import HOSTILE, make_finding, make_hostile

from stagehunt.findings import Finding


@pytest.fixture
def finding() -> Finding:
    return make_finding()


@pytest.fixture(params=HOSTILE, ids=repr)
def hostile(request: pytest.FixtureRequest) -> Finding:
    return make_hostile(request.param)
