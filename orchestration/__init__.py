"""Dagster adapter: refreshes due devices on schedule by calling ``tracking``.

``orchestration.definitions.defs`` is the code location (``workspace.yaml``).
"""
