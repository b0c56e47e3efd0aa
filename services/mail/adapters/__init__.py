"""The edges the use cases talk through: tables and the store, proto mapping, identity's
password check, the TLS certificate."""
