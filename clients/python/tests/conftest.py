"""The daemons every test here shares: one mesh of two devices per session."""

import pytest

from daemons import started_mesh


@pytest.fixture(scope="session")
def mesh():
    yield from started_mesh()
