"""The mocks run as real processes here too: reuse the national tests' fixtures."""

from tests.national.conftest import (  # noqa: F401
    _clean_mocks,
    business_registry,
    document_axis,
    mock_factory,
    payment,
    population,
    public_service_portal,
)
