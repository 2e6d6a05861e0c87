"""A lending library, a second modular monolith for the kit's tests.

Shaped unlike Northwind on purpose: members keyed by text, books by ISBN
with copies under a composite key, loans keyed by UUID, and a lending
context whose handlers call both others' APIs through ports.
"""
