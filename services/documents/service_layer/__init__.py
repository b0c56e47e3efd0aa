"""Use cases: one method per command, each one unit of work (rows + events together)."""
