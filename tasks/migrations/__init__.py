"""Alembic revisions of the pipeline's database schema, applied by :mod:`tasks.migrate`.

``versions/`` holds one file per schema change, each with its ``revision`` and
``down_revision``; :mod:`tasks.migrate` runs them (there is no alembic.ini or env.py: the
pipeline applies them itself before its first load).
"""
