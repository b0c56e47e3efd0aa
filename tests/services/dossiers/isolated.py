"""Settings that keep a dossiers service under test to itself: its own data directory and
HTTP port, and every outside system it would call (gateway, national portal, payment
platform, population database, business registry) at a port where nothing listens, so a
platform left running on the default ports (`make run`) never takes part in a test. A test
that wants one of them running overrides its entry."""

from __future__ import annotations

from pathlib import Path

from tests.support import free_port


def isolated_env(data_dir: Path) -> dict[str, str]:
    return {
        "LGSP_PLATFORM_DATA_DIR": str(data_dir),
        "LGSP_DOSSIERS_HTTP_PORT": str(free_port()),
        "LGSP_DOSSIERS_VERIFY_APPLICANTS": "false",
        "LGSP_DOSSIERS_PORTAL_SUBSCRIBE": "false",
        "LGSP_DOSSIERS_PAYMENT_RECONCILE_INTERVAL_S": "0",
        "LGSP_GATEWAY_GRPC_PORT": str(free_port()),
        "LGSP_NATIONAL_PUBLIC_SERVICE_PORTAL_PORT": str(free_port()),
        "LGSP_NATIONAL_PAYMENT_PORT": str(free_port()),
        "LGSP_NATIONAL_POPULATION_PORT": str(free_port()),
        "LGSP_NATIONAL_BUSINESS_REGISTRY_PORT": str(free_port()),
    }
