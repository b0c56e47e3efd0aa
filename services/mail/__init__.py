"""Official mail (thư điện tử công vụ): a mailbox for every official, kept from identity's
events, the mail store, gRPC MailService and SMTP (submission and inbound). docs/mail.md.

    domain/          addresses (the naming convention), mailboxes and folders, messages
                     (parsing and composing RFC 5322), the domain errors
    service_layer/   the use cases, each one unit of work (rows and events commit together)
    adapters/        tables and the store over them, proto mapping, identity's password
                     check, the TLS certificate
    entrypoints/     gRPC MailService, the SMTP servers (aiosmtpd)
    settings.py      the [mail] settings section
    bootstrap.py     wire_service(runtime): the composition root
    plugin.py        PLUGIN: what the platform reads to run this service
    migrations/      Alembic revisions of this service's own database
"""
