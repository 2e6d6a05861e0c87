"""Extraction: generate a service host for a context, never a copy of it."""
