"""Lending: which copy is out with which member, and since when."""
