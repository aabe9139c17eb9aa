"""The thin Airflow layer (hooks, operators, provider info). The only place that imports Airflow."""
from __future__ import annotations
