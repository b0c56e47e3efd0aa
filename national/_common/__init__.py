"""Shared pieces of the national mocks: app scaffolding, faults, storage, generated data."""
