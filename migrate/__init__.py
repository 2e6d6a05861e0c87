"""The strangler-fig migration kit: check, route, extract, sync, shift."""
