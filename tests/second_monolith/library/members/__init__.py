"""Members of the library: who may borrow, and how many books each has out."""
