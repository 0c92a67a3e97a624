"""One module per calendar system behind the interface in providers/base.py."""
