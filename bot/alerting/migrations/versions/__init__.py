"""Alembic revisions, oldest first; see the package docstring for what each does."""
