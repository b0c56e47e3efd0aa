"""The [template] settings section: LGSP_TEMPLATE_<KEY> or [template] in lgsp.toml."""

from __future__ import annotations

from dataclasses import dataclass

from lgsp.config import ServiceSettings, port_field


@dataclass(frozen=True)
class TemplateSettings(ServiceSettings):
    """Inherited: grpc_port, database_url ("" = sqlite:///<data_dir>/template.db).

    Add the service's own keys with the helpers of lgsp.config, which validate them and
    document them in `lgsp config show`, e.g. ``page_size: int = num_field(50, 1, 500)``
    or ``mode: str = choice_field("fast", "fast", "safe")``; cross-checks of several keys
    go in `problems()`, values derived from other settings in `derived()`.
    """

    grpc_port: int = port_field(50060)
