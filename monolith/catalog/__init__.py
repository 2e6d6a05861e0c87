"""Catalog: categories, suppliers and the products Northwind sells."""
