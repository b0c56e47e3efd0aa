"""The seed catalogue of procedures (catalogue.json beside this module): real procedures of a
province's departments and communes, with the sources in docs/dossiers.md."""

from __future__ import annotations

import json
from pathlib import Path

from services.dossiers.adapters.repository import procedure_from_json
from services.dossiers.domain.procedure import Procedure

CATALOGUE = Path(__file__).parent / "catalogue.json"


def load_catalogue(path: Path = CATALOGUE) -> list[Procedure]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [procedure_from_json(p) for p in data["procedures"]]
