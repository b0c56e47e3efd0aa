"""Dossiers service: agencies post notices (thông báo), announced as NoticePosted events.

Made by `lgsp new-service` as a starting point; see docs/platform.md "Adding a service".
The layers, from the inside out:

    domain/          the Notice and its rules, the domain errors (no gRPC, SQL or Kafka)
    service_layer/   the use cases, each one unit of work (rows and events commit together)
    adapters/        the tables and the repository over them, domain ↔ proto conversion
    entrypoints/     the gRPC servicer: proto in, use case, proto out, errors → statuses
    settings.py      the [dossiers] settings section
    bootstrap.py     wire_service(runtime): the composition root
    plugin.py        PLUGIN: what the platform reads to run this service
    cli.py           `lgsp dossiers …` commands
    migrations/      Alembic revisions of this service's own database
"""
