"""The LGSP gateway process (see lgsp.gateway and docs/gateway.md)."""
