"""What every context needs from outside itself, whatever host runs it.

Contexts import this package (and nothing of a host): event definitions,
decimal money, the SQL unit of work with its outbox and inbox, and the
host-independent description of HTTP routes.
"""
