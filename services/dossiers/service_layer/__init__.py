"""The dossiers service's use cases."""
