"""Entrypoints: the gRPC DocumentService."""
