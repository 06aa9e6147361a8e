"""opsbench runtime: settings, connections, embedded PostgreSQL, CLI."""

__version__ = "0.1.0"
