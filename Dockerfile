# A local Airflow image with the provider installed (MWAA-like: Airflow 3.3 on Python 3.12).
# Not built in CI (no Docker engine there); `make install` is the tested path.
FROM apache/airflow:3.3.2-python3.12

COPY --chown=airflow:root pyproject.toml README.md /opt/rds-slowlog/
COPY --chown=airflow:root include/ /opt/rds-slowlog/include/
RUN pip install --no-cache-dir "/opt/rds-slowlog[airflow]"

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
