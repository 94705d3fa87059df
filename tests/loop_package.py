"""A module workers import through ``packages`` (the loop checks it was imported)."""

IMPORTED = True
