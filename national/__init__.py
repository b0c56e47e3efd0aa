"""Mocks of the national databases and portals, each its own process.

`lgsp up` runs every sub-package with a `__main__.py` (`python -m national.<name>`). The
names the configuration knows ports for ([national] in lgsp.toml) are population,
business_registry, document_axis, public_service_portal and payment; each mock should
answer GET /healthz for the operator console.
"""
