# A local Airflow image with the provider installed (MWAA-like: Airflow 3.3 on Python 3.12).
# Not built in CI (no Docker engine there); `make install` is the tested path. The image's Airflow is the one
# of the tested lock (.ci/constraints.txt), and the provider is installed under that lock, so the image runs
# the versions the suite ran. MWAA itself runs 3.3.1: deploy there with `make mwaa-bundle` (DEPLOY.md).
# tests/test_dockerfile.py keeps this file in step with the lock and with requirements.txt.
FROM apache/airflow:3.3.2-python3.12

COPY --chown=airflow:root pyproject.toml README.md /opt/rds-slowlog/
COPY --chown=airflow:root .ci/constraints.txt /opt/rds-slowlog/constraints.txt
COPY --chown=airflow:root include/ /opt/rds-slowlog/include/
RUN pip install --no-cache-dir -c /opt/rds-slowlog/constraints.txt "apache-airflow==3.3.2" "/opt/rds-slowlog[airflow]"

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
