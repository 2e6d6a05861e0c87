"""Northwind, a modular monolith: one package per bounded context."""
