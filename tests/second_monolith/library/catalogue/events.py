"""What the catalogue announces: nothing yet."""
