"""Ordering: orders and their lines, priced from the catalog when placed."""
