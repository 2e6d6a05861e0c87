"""Data for `migrate seed`: the Northwind dump, or a synthetic set of any size.

Both sources produce the same `Dataset` (see `dataset`): frozen records for
the tables the kit loads, money as decimals to the cent. `northwind` reads a
PostgreSQL dump and says exactly where it is wrong; `synthetic` draws a
deterministic data set of the same shape for load tests. Neither touches a
database.
"""
