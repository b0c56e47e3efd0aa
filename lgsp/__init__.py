"""LGSP: the provincial integration platform core that every service imports."""

__version__ = "0.1.0"
