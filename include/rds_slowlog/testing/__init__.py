"""Test doubles for the outside world the downloader talks to (an emulator of the RDS log API).

Nothing here is imported by the production path; it exists so tests, the demo and ``rds-slowlog
rds-emulator`` can drive real boto3 against local files. Names are resolved lazily so that
``python -m rds_slowlog.testing.rds_emulator`` does not import the module twice.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rds_slowlog.testing.rds_emulator import Call, Faults, InstanceSpec, RdsEmulator, layout_hourly

__all__ = ["Call", "Faults", "InstanceSpec", "RdsEmulator", "layout_hourly"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rds_slowlog.testing import rds_emulator

        return getattr(rds_emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
