"""A deterministic local auction web site (three houses) for the demo and the tests."""
