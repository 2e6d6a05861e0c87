"""Moving a context's data: backfill, verification, following, the write flip."""
