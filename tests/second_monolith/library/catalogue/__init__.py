"""The catalogue: books by ISBN, and the numbered copies on the shelves."""
