"""Wiring: configuration → use cases → gRPC servicer. `wire_service(runtime)` is the plugin's
composition root; tests pass their own authenticator and read the `Notices` as the
runtime's `app`."""

from __future__ import annotations

from lgsp.api.template.v1 import template_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.plugins import Wiring
from services._template.entrypoints.grpc import TemplateServicer
from services._template.service_layer.notices import Notices


def wire_service(runtime: ServiceRuntime, *, authenticator: Authenticator | None = None) -> Wiring:
    """The template plugin's composition root; `app` is the `Notices` use cases."""
    notices = Notices(runtime.engine, after_commit=runtime.after_commit)
    return Wiring(
        servicers=[
            (template_pb2_grpc.add_TemplateServiceServicer_to_server, TemplateServicer(notices))
        ],
        # Tokens of the platform's identity provider ([identity] settings).
        authenticator=authenticator or authenticator_from_settings(runtime.settings),
        app=notices,
    )
