"""Hosts for a context outside the monolith: the service host and its Nameko glue."""
