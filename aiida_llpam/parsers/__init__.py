"""One parser per calculation."""
