"""The sensors: new files in the landing folders, and failed runs."""


import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from journey_core.config import Config
from pipelines.assets import PARTITIONS
from pipelines.resources import JourneysResource
from pipelines.schedules import nightly_job

#: The landing sensor leaves files modified in the last minute for its next tick (uploads).
SETTLE_SECONDS = 60


def landing_files(config: Config) -> dict[str, str]:
    """Every source file: path -> `size:mtime_ns`, the key of one version of the file."""
    files = {}
    for source in config.sources:
        for path in config.source_files(source):
            stat = path.stat()
            files[str(path)] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return files


@dg.sensor(
    name="journeys_landing",
    job=nightly_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Request a run of the latest partition when new or changed files land in the "
    "sources' folders. The cursor remembers every file version seen, and the run key is the "
    "set of new versions, so a file never triggers twice.",
)
def journeys_landing(context: dg.SensorEvaluationContext,
                     warehouse: JourneysResource) -> dg.SensorResult | dg.SkipReason:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    new = {path: key for path, key in landing_files(warehouse.load()).items()
           if seen.get(path) != key
           and now - int(key.split(":")[1]) / 1e9 >= SETTLE_SECONDS}
    if not new:
        return dg.SkipReason("no new files in the landing folders")
    run_key = hashlib.sha256(json.dumps(sorted(new.items())).encode()).hexdigest()
    partition = PARTITIONS.get_last_partition_key()
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, partition_key=partition,
                                    tags={"journeys/new_files": str(len(new))})],
        cursor=json.dumps({**seen, **new}, sort_keys=True),
    )


def failure_sensor(warehouse: Callable[[], JourneysResource]) -> dg.SensorDefinition:
    """The run-failure sensor, writing beside the warehouse that `warehouse()` names."""

    @dg.run_failure_sensor(
        name="journeys_run_failures",
        description="Append every failed run (job, failed steps, error) to "
        "`<warehouse>/run_failures.jsonl` for the on-call data engineer.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def journeys_run_failures(context: dg.RunFailureSensorContext) -> None:
        def root_message(error: Any) -> str:  # a SerializableErrorInfo or None
            while error is not None and error.cause is not None:  # Dagster wraps the error
                error = error.cause
            return error.message.strip() if error else ""

        failures = [{"step": e.step_key, "error": root_message(e.event_specific_data.error)}
                    for e in context.get_step_failure_events()]
        record = {"run_id": context.dagster_run.run_id, "job": context.dagster_run.job_name,
                  "failed_at": datetime.now(UTC).isoformat(),
                  "message": context.failure_event.message, "steps": failures}
        path = Path(warehouse().warehouse_dir) / "run_failures.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    return journeys_run_failures
