"""One module per schema revision (Alembic skips files whose names begin with ``_``)."""
