"""Consumer-driven contracts of the reference monolith's seams.

The Pact files beside this module (one per consumer-provider pair) say what
each consumer relies on; `contracts.states` says how each provider is put in
the states those files name. `migrate contracts verify` replays the files
against the monolith and against each extracted service.
"""
