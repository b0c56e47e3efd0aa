"""Adapters: tables and repositories (SQLAlchemy), proto mapping, the agency directory."""
