"""The dossiers use cases, one class per group (base, catalogue, its import and export,
intake, steps, fees, reading, citizen, listing, figures), put together as DossiersApp. Each
write is one unit of work: the rows and their events commit together through the outbox
(lgsp.db.UnitOfWork), or nothing does."""

from __future__ import annotations

from services.dossiers.service_layer.base import AgencyDirectory
from services.dossiers.service_layer.catalogue import CatalogueUseCases
from services.dossiers.service_layer.catalogue_transfer import CatalogueTransferUseCases
from services.dossiers.service_layer.citizen import CitizenUseCases
from services.dossiers.service_layer.fees import FeeUseCases
from services.dossiers.service_layer.figures import FiguresUseCases
from services.dossiers.service_layer.intake import IntakeUseCases
from services.dossiers.service_layer.listing import ListingUseCases
from services.dossiers.service_layer.reading import ReadingUseCases
from services.dossiers.service_layer.steps import StepUseCases

__all__ = ["AgencyDirectory", "DossiersApp"]


class DossiersApp(
    CatalogueUseCases,
    CatalogueTransferUseCases,
    IntakeUseCases,
    StepUseCases,
    FeeUseCases,
    ReadingUseCases,
    CitizenUseCases,
    ListingUseCases,
    FiguresUseCases,
):
    """The whole service: what the gRPC servicers, the CLI and the tests call."""
