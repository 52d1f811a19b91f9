"""Prefect deployments of the daily flow (the `prod` and `dev` schedules)."""
