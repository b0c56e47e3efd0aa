"""The edges the use cases talk through: tables and repository, proto conversion."""
