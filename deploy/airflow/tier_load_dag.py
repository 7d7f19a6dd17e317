"""The brief's pipeline on Airflow: each dataset's landed exports (a local directory or glob,
or an object-storage prefix such as s3://lake/raw/track_events/) are listed by tier, one
`tier load NAME --from FILE --mode append` task is mapped per file (dynamic task mapping),
and one `tier validate` per dataset checks the files against the warehouse afterwards.

Re-runs and retries are safe: every load is one transaction recorded in the tier_loads
ledger, and a file (or object, by URL, ETag and size) already loaded is skipped. Each task
is one `tier` process, so the Celery and Kubernetes executors run it unchanged (tier must
be on the worker's PATH, or TIER_BIN set). A pool caps concurrent loads (each load keeps a
couple of cores and one database connection busy).

Configuration, from the environment of the scheduler and workers:
  TIER_LANDING   dataset=location pairs separated by ';' (required), e.g.
                 "track_events=s3://lake/raw/track_events/;weather=/data/landing/weather/"
  TIER_BIN       the tier binary (default: tier)
  TIER_POOL      the Airflow pool capping concurrent loads (default: tier_loads; create it
                 with `airflow pools set tier_loads 2 "tier loads"`)
  DATABASE_URL, TIER_SCHEMA, TIER_DATASETS, AWS_* are read by tier itself.
"""
import os
import shlex
import subprocess
from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator

TIER = os.environ.get("TIER_BIN", "tier")
POOL = os.environ.get("TIER_POOL", "tier_loads")


def landing():
    """{dataset: location} from TIER_LANDING."""
    pairs = [p.split("=", 1) for p in os.environ.get("TIER_LANDING", "").split(";") if "=" in p]
    return {name.strip(): location.strip() for name, location in pairs}


with DAG(
    dag_id="tier_load",
    description="Load landed exports with tier, one task per file, then validate",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
    tags=["tier"],
) as dag:
    for name, location in landing().items():

        @task(task_id=f"list_{name}")
        def list_files(name=name, location=location):
            """The landed files, as the load will see them (tier lists objects too)."""
            out = subprocess.run([TIER, "-q", "load", name, "--from", location, "--list"], check=True, capture_output=True, text=True)
            return [line for line in out.stdout.splitlines() if line]

        @task(task_id=f"commands_{name}")
        def commands(files, name=name):
            return [f"{shlex.quote(TIER)} -q load {shlex.quote(name)} --from {shlex.quote(f)} --mode append" for f in files]

        load = BashOperator.partial(task_id=f"load_{name}", pool=POOL, append_env=True).expand(
            bash_command=commands(list_files())
        )
        validate = BashOperator(
            task_id=f"validate_{name}",
            bash_command=f"{shlex.quote(TIER)} -q validate {shlex.quote(name)} --from {shlex.quote(location)}",
            append_env=True,
        )
        load >> validate
