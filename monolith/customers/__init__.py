"""Customers: the companies Northwind sells to."""
