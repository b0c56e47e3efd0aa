"""Search service: the document archive's full-text index (see docs/search.md)."""
