"""What the API's tests share (a pytest plugin, registered in conftest.py): its addresses,
the token, the ``bearer`` headers that carry it and a ``stuck`` run. A module whose every test
needs the token set says ``pytestmark = pytest.mark.usefixtures("api_token")``."""

from datetime import timedelta

import pytest

CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
HEALTH = "/api/apps/tender/admin/health"
TOKEN = "s3cret-token-for-tests"
MIN = timedelta(minutes=1)


@pytest.fixture
def api_token(settings) -> str:
    settings.TENDEROPS_API_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def bearer(api_token) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}


@pytest.fixture
def stuck(make_run):
    return make_run(started_ago=30 * MIN)
