"""HTTP API of the population mock.

POST /api/v1/citizens/verify            {"id_number", "full_name", "birth_date"} -> match result
GET  /api/v1/citizens/{id_number}                     -> the citizen's basic record
GET  /api/v1/citizens/{id_number}/household           -> the household and its members
"""

from __future__ import annotations

import unicodedata
from datetime import date

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lgsp.connectors.identifiers import IdentifierError, parse_citizen_id
from national._common.app import MockConfig, build_app, read_json
from national._common.errors import invalid, not_found
from national.population.data import Population, generate


def normalize_name(name: str) -> str:
    """Names compare by letters and diacritics, not by case, spacing or Unicode form."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def check_id(value: object) -> str:
    if not isinstance(value, str):
        raise invalid("id_number", "Thiếu số định danh cá nhân")
    try:
        parse_citizen_id(value)
    except IdentifierError as exc:
        raise invalid(
            "id_number", "Số định danh cá nhân không hợp lệ", str(exc), "INVALID_ID_NUMBER"
        ) from None
    return value


def check_birth_date(value: object) -> date:
    if not isinstance(value, str):
        raise invalid("birth_date", "Thiếu ngày sinh (định dạng YYYY-MM-DD)")
    try:
        return date.fromisoformat(value) if len(value) == 10 else date.fromisoformat("x")
    except ValueError:
        raise invalid("birth_date", "Ngày sinh không hợp lệ (định dạng YYYY-MM-DD)") from None


def create_app(config: MockConfig) -> Starlette:
    people: Population = generate(config.seed)

    def find(id_number: str) -> dict[str, object]:
        citizen = people.citizens.get(check_id(id_number))
        if citizen is None:
            raise not_found("CITIZEN_NOT_FOUND", "Không tìm thấy công dân")
        return citizen.public()

    async def verify(request: Request) -> JSONResponse:
        body = await read_json(request)
        id_number = check_id(body.get("id_number"))
        full_name = body.get("full_name")
        if not isinstance(full_name, str) or not full_name.strip() or len(full_name) > 100:
            raise invalid("full_name", "Họ và tên không hợp lệ (1-100 ký tự)")
        born = check_birth_date(body.get("birth_date"))
        citizen = people.citizens.get(id_number)
        if citizen is None:
            raise not_found("CITIZEN_NOT_FOUND", "Không tìm thấy công dân")
        # Only whether each field matches: the registry never discloses the stored values.
        fields = {
            "full_name": normalize_name(full_name) == normalize_name(citizen.full_name),
            "birth_date": born == citizen.birth_date,
        }
        return JSONResponse(
            {"id_number": id_number, "match": all(fields.values()), "fields": fields}
        )

    async def citizen(request: Request) -> JSONResponse:
        return JSONResponse(find(request.path_params["id_number"]))

    async def household(request: Request) -> JSONResponse:
        record = find(request.path_params["id_number"])
        hh = people.households[str(record["household_id"])]
        head = next(m for m in hh.members if m.relation == "Chủ hộ")
        return JSONResponse(
            {
                "household_id": hh.household_id,
                "address": hh.address,
                "province": hh.province,
                "head_id_number": head.id_number,
                "members": [
                    {
                        "id_number": m.id_number,
                        "full_name": m.full_name,
                        "birth_date": m.birth_date.isoformat(),
                        "sex": "Nam" if m.male else "Nữ",
                        "relation_to_head": m.relation,
                    }
                    for m in hh.members
                ],
            }
        )

    return build_app(
        config,
        [
            Route("/api/v1/citizens/verify", verify, methods=["POST"]),
            Route("/api/v1/citizens/{id_number}", citizen, methods=["GET"]),
            Route("/api/v1/citizens/{id_number}/household", household, methods=["GET"]),
        ],
    )
