"""Incremental runs: rebuild only the persons a run touches, then merge them into `main`.

The unit of reprocessing is the person. Every row of a person table (events, sessions,
journeys, ...) depends only on that person's events, the config, and as-of; so a run that
rebuilds every person whose rows can change, with the same SQL models, and keeps every other
person's published rows, gives exactly the tables of a full rebuild. A person is touched when:

- an event of a file not yet published (`processed_files`) is theirs (late events included:
  the person's whole history is cut again, so a late event can join, split or extend
  sessions and journeys published long ago);
- identity moved an identifier to or from them (new events linked identifiers): both the old
  and the new person;
- moving as-of forward flips a status: an open journey closes, a pending abandonment attempt
  is abandoned. (As-of never moves back, so no status flips the other way.)

Rows of untouched persons keep everything but the `as_of` column of journeys and abandonment,
which every run sets. Tables that aggregate over persons (funnel, KPIs, ...) and identity are
rebuilt whole. A run is a full rebuild instead when nothing was published yet, when the
settings or SQL models changed (`config_fingerprint`), or when asked.

The run's plan lives in `staging` (`_run`, `_touched`, `_late`) so that every Dagster step of
one run sees the same one; the touched persons' rows are built in the schema `delta`. The plan
needs the run's new identity map: it is made right after the identity step (or, in a run
without it, by the first person-scoped step, and then it is a full rebuild).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from journey_core.config import Config, micros
from journey_core.contract.schema import TABLES
from journey_core.contract.vocabulary import ATTEMPT_PENDING, FULL, INCREMENTAL, JOURNEY_OPEN
from journey_core.model.engine import Engine
from journey_core.model.runner import Model
from journey_core.warehouse.quoting import qualified

STAGING = "staging"
DELTA = "delta"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
__all__ = ["DELTA", "FULL", "INCREMENTAL", "STAGING", "Plan", "State", "compute_as_of",
           "fingerprint", "plan", "read_plan"]


def as_of_tables(person_tables: tuple[str, ...]) -> tuple[str, ...]:
    """Person tables with an `as_of` column, set on every row by every run."""
    return tuple(t for t in person_tables if "as_of" in TABLES[t].column_names)


def fingerprint(config: Config, models: dict[str, Model]) -> str:
    """sha256 of everything the derived tables are computed from besides the events: the
    settings (not sources, ingest limits, nor DuckDB's or Spark's resources: a run on
    another Spark master, or with more memory, stays incremental) and the SQL models."""
    settings = config.model_dump(mode="json", exclude={
        "sources", "duckdb", "spark", "base_dir", "max_future", "max_lateness", "identity"})
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, model in sorted(models.items()):
        if not model.is_report:
            digest.update(f"\0{name}\0{model.sql}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class State:
    """The published watermark (`pipeline_state`)."""

    as_of: datetime
    latest_partition: date | None
    config_fingerprint: str


def read_state(engine: Engine) -> State | None:
    if not engine.exists("main", "pipeline_state"):
        return None
    rows = engine.rows("select as_of, latest_partition, config_fingerprint "
                       "from main.pipeline_state")
    return State(rows[0][0].astimezone(UTC), rows[0][1], rows[0][2]) if rows else None


def day_end(day: date) -> datetime:
    """The end of a UTC day: the next midnight."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def compute_as_of(engine: Engine, partition: date | None = None) -> datetime:
    """The run's as-of time: the end (next midnight UTC) of the latest day processed, which is
    the latest of: the day of the latest event, the run's partition, and the as-of already
    published (it never moves back). With nothing at all, the Unix epoch."""
    candidates = [EPOCH]
    if engine.exists("main", "ingested_events"):
        latest = engine.scalar("select max(occurred_at) from main.ingested_events")
        if latest is not None:
            candidates.append(day_end(latest.astimezone(UTC).date()))
    if partition is not None:
        candidates.append(day_end(partition))
    state = read_state(engine)
    if state is not None:
        candidates.append(state.as_of)
    return max(candidates)


@dataclass(frozen=True)
class Plan:
    """What this run rebuilds, decided once (after the identity step) and kept in staging."""

    mode: str
    as_of: datetime
    partition: date | None
    persons: int
    config_fingerprint: str

    @property
    def incremental(self) -> bool:
        return self.mode == INCREMENTAL


_NEW_EVENTS = """
    select e.*
    from main.ingested_events as e
    inner join main.file_ledger as l on e.file = l.path and e.ingested_at = l.loaded_at
    where l.content_hash not in (select content_hash from main.processed_files)
"""


def read_plan(engine: Engine) -> Plan | None:
    if not engine.exists(STAGING, "_run"):
        return None
    mode, as_of, partition, persons, digest = engine.rows(
        f"select mode, as_of, partition, persons, config_fingerprint from {STAGING}._run")[0]
    return Plan(mode, as_of.astimezone(UTC), partition, persons, digest)


def plan(engine: Engine, config: Config, as_of: datetime, *, partition: date | None,
         full: bool, fingerprint: str, person_tables: tuple[str, ...]) -> Plan:
    """This run's plan: full or incremental, the touched persons, the late events."""
    existing = read_plan(engine)
    if existing is not None:
        return existing
    engine.ensure_tables(["ingested_events", "file_ledger", "pipeline_state", "processed_files",
                          "late_events"])
    state = read_state(engine)
    incremental = (not full and state is not None
                   and state.config_fingerprint == fingerprint
                   and engine.exists(STAGING, "identity_map")
                   and all(engine.exists("main", t) for t in person_tables))
    engine.create_schema(STAGING)
    _stage_late_events(engine, config, as_of, state)
    if incremental:
        _stage_touched(engine, config, as_of)
        persons = engine.scalar(f"select count(*) from {STAGING}._touched")
    else:
        persons = engine.scalar(
            f"select count(distinct person_id) from {STAGING}.identity_map") \
            if engine.exists(STAGING, "identity_map") else 0
    mode = INCREMENTAL if incremental else FULL
    engine.execute(f"create table {STAGING}._run as select $mode as mode, "
                   "$as_of::timestamptz as as_of, $partition::date as \"partition\", "
                   "$persons::bigint as persons, $fingerprint as config_fingerprint",
                   {"mode": mode, "as_of": as_of, "partition": partition, "persons": persons,
                    "fingerprint": fingerprint})
    return Plan(mode, as_of, partition, persons, fingerprint)


def _stage_late_events(engine: Engine, config: Config, as_of: datetime,
                       state: State | None) -> None:
    """New events that happened more than max_lateness before the published as-of."""
    watermark = state.as_of if state is not None else None
    engine.execute(f"""
        create table {STAGING}._late as
        select
            e.event_id, e.source, e.file, e.occurred_at,
            $watermark::timestamptz as watermark,
            cast(date_diff('second', e.occurred_at, $watermark::timestamptz) as bigint)
                as late_by_seconds,
            cast($lateness_us // 1000000 as bigint) as max_lateness_seconds,
            $as_of::timestamptz as as_of
        from ({_NEW_EVENTS}) as e
        where $watermark is not null
            and date_diff('microsecond', e.occurred_at, $watermark::timestamptz) > $lateness_us
            and e.event_id not in (select event_id from main.late_events)
    """, {"watermark": watermark, "lateness_us": micros(config.max_lateness), "as_of": as_of})


def _stage_touched(engine: Engine, config: Config, as_of: datetime) -> None:
    """The persons whose rows can change in this run (old and new person ids)."""
    engine.execute(f"""
        create table {STAGING}._touched as
        with new_events as (
            -- stg_events gives each event its anchor, the identifier that decides its person
            select s.anchor_type, s.anchor_value
            from {STAGING}.stg_events as s
            semi join ({_NEW_EVENTS}) as e on s.event_id = e.event_id
        ),
        new_persons as (
            select m.person_id
            from new_events as n
            inner join {STAGING}.identity_map as m
                on m.identifier_type = n.anchor_type and m.identifier_value = n.anchor_value
        ),
        moved as (
            select o.person_id as old_id, n.person_id as new_id
            from main.identity_map as o
            full outer join {STAGING}.identity_map as n
                on o.identifier_type = n.identifier_type
                and o.identifier_value = n.identifier_value
            where o.person_id is distinct from n.person_id
        ),
        closing as (
            select person_id
            from main.journeys
            where status = $journey_open
                and date_diff('microsecond', ended_at, $as_of::timestamptz) > $journey_us
        ),
        expiring as (
            select a.person_id
            from main.abandonment as a
            inner join cfg_abandonment_rules as r on a.rule = r.rule
            where a.status = $attempt_pending
                and date_diff('microsecond', a.last_start_at, $as_of::timestamptz) >= r.window_us
        )
        select person_id from new_persons
        union select old_id from moved where old_id is not null
        union select new_id from moved where new_id is not null
        union select person_id from closing
        union select person_id from expiring
    """, {"as_of": as_of, "journey_us": micros(config.journey_timeout),
          "journey_open": JOURNEY_OPEN, "attempt_pending": ATTEMPT_PENDING})


def merge(engine: Engine, table: str, as_of: datetime, *, stamp_as_of: bool) -> None:
    """Inside the publish transaction: replace the touched persons' rows of `main.<table>`
    (and set the `as_of` column of every row, where the table has one)."""
    target = qualified("main", table)
    engine.execute(f"delete from {target} where person_id in "
                   f"(select person_id from {STAGING}._touched)")
    engine.execute(f"insert into {target} by name select * from {qualified(DELTA, table)}")
    if stamp_as_of:
        engine.execute(f"update {target} set as_of = ? where as_of <> ?", [as_of, as_of])


def record_state(engine: Engine, run: Plan) -> None:
    """Inside the publish transaction: the new watermark, the files now published, and the
    late events this run folded in. (Rows are only ever added or the table written anew: SQL
    that Spark's Parquet tables run too.)"""
    state = read_state(engine)
    latest = max((d for d in (state and state.latest_partition, run.partition) if d),
                 default=None)
    forget_state(engine)
    engine.execute("insert into main.pipeline_state values (?, ?, ?, ?, ?)",
                   [run.as_of, latest, run.config_fingerprint, run.mode, run.persons])
    engine.execute("insert into main.processed_files select content_hash, path, ? from "
                   "main.file_ledger where content_hash not in "
                   "(select content_hash from main.processed_files)", [run.as_of])
    engine.execute(f"insert into main.late_events select * from {STAGING}._late")


def forget_state(engine: Engine) -> None:
    """Make the next run a full rebuild (published tables no longer known to be in step): an
    empty `pipeline_state`."""
    engine.execute("drop table if exists main.pipeline_state")
    engine.ensure_tables(["pipeline_state"])
