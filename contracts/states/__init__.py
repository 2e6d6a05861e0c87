"""Provider states, one module per provider context (`STATES` in each).

See `migrate.contracts.states` for how a state handler is written.
"""
