"""Billing: invoices issued from placed orders, and the payments against them."""
