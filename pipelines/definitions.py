"""The Dagster code location: it only composes the resources, assets, checks, job, schedule
and sensors defined in their own modules.
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets import all_assets
from pipelines.resources import DEFAULT_CONFIG, DEFAULT_WAREHOUSE, JourneysResource
from pipelines.schedules import nightly_job, nightly_schedule
from pipelines.sensors import failure_sensor, journeys_landing


def journeys_resource() -> JourneysResource:
    """The resource from JOURNEYS_CONFIG / JOURNEYS_WAREHOUSE (defaults: the sample)."""
    return JourneysResource(
        config_path=os.environ.get("JOURNEYS_CONFIG", DEFAULT_CONFIG),
        warehouse_dir=os.environ.get("JOURNEYS_WAREHOUSE", DEFAULT_WAREHOUSE),
    )


journeys_run_failures = failure_sensor(journeys_resource)

defs = dg.Definitions(
    assets=all_assets,
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[journeys_run_failures, journeys_landing],
    resources={"warehouse": journeys_resource()},
    # One process writes the DuckDB file at a time: steps run one after another in-process.
    executor=dg.in_process_executor,
)
