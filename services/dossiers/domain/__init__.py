"""The dossiers service's domain: the Notice, its rules and its refusals. Plain Python:
nothing here knows gRPC, SQL or the bus, so the rules are tested without any of them."""
