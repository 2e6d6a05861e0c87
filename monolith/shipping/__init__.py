"""Shipping: shippers, and the shipment that follows every placed order."""
