"""Neutral plumbing under every app: client input bounds, API error forms, the connection pool, parsers.

Nothing here imports an app; every app may import it (the layer order is in README, Architecture).
"""
