"""The platform's services: one folder each, declaring its plugin in plugin.py (lgsp.plugins).

The package may span several folders on the import path (a province's own service installed
beside the platform's), so discovery finds a service wherever its folder is."""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
