"""Strict bounded contexts: prove the edges of each context hold.

`migrate check` reads the context manifest and checks the code's imports
(`code`, on grimp's import graph) and the tables' ownership (`data`, on the
SQLAlchemy metadata); `sqlguard` watches the SQL that runs; `plan` says what
extracting one context will cut. `check()` is the library entry point.
"""
