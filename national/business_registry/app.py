"""HTTP API of the business registry mock.

GET /api/v1/enterprises/{tax_code}   tax_code "0101234567" or, for a branch, "0101234567-001"
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lgsp.connectors.identifiers import IdentifierError, parse_tax_code
from national._common.app import MockConfig, build_app
from national._common.errors import invalid, not_found
from national.business_registry.data import generate


def create_app(config: MockConfig) -> Starlette:
    enterprises = generate(config.seed)

    async def enterprise(request: Request) -> JSONResponse:
        tax_code = request.path_params["tax_code"]
        try:
            parse_tax_code(tax_code)
        except IdentifierError as exc:
            raise invalid(
                "tax_code", "Mã số thuế không hợp lệ", str(exc), "INVALID_TAX_CODE"
            ) from None
        found = enterprises.get(tax_code)
        if found is None:
            raise not_found("ENTERPRISE_NOT_FOUND", "Không tìm thấy doanh nghiệp")
        return JSONResponse(found.public())

    return build_app(config, [Route("/api/v1/enterprises/{tax_code}", enterprise, methods=["GET"])])
