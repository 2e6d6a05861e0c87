"""The strangler-fig router: who answers each request, and its history.

`state` keeps backends, routes, read weights, writers and a ledger of every
change in one SQLite file; `table` compiles routes into matchers; `buckets`
decides a key's side of a weighted split exactly as nginx's `split_clients`
would; `proxy` is the aiohttp server that routes by all of it, started with
`python -m migrate.router --state PATH --port N`; `bench` measures what the
router adds per request.
"""
