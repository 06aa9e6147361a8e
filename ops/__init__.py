"""opsbench: the runtime, grouped in rooms (core, data, alerting, reports, daemon, workbench, cli); see README, Architecture."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from ops import db` was the documented way to get an engine before the
    # rooms existed; it keeps working for notebooks and scripts written then
    if name == "db":
        from ops.data import db

        return db
    raise AttributeError(f"module 'ops' has no attribute {name!r}")
