"""The template service's use cases."""
