"""Desired state and history, behind small repositories (SQLite today).

Actors and HTTP handlers use the repositories in this package, never SQL, so a
server backend can replace SQLite without touching them.
"""
