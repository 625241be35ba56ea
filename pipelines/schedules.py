"""The nightly job and its schedule."""


from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.assets import GROUP

nightly_job = dg.define_asset_job(
    "journeys_nightly",
    selection=dg.AssetSelection.groups(GROUP),
    description="For one UTC day: ingest new files, rebuild the persons they touch (or every "
    "table, when nothing was published yet or the settings changed), publish.",
)


@dg.schedule(
    name="journeys_nightly_schedule",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="At 02:00 UTC, the run of the partition of the day that just ended.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    ended = scheduled.astimezone(UTC).date() - timedelta(days=1)
    return dg.RunRequest(partition_key=ended.isoformat())
