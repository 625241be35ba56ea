"""`journeys`: run the pipeline through Dagster, generate sample data, write the data dictionary.

Exit codes: 0 success; 1 a run failed (bad input file, failed model); 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from journey_core.config import ENGINES, ConfigError, load_config
from journey_core.contract.schema import INGESTED_EVENTS, PUBLISHED
from journey_core.ingest import IngestError
from journey_core.model import ModelError
from journey_core.ops import PipelineError, check_paths
from journey_core.ops.rejects import RejectsError
from journey_core.privacy import PrivacyError
from journey_core.warehouse import WAREHOUSE_FILE

_KNOWN_ERRORS = (ConfigError, IngestError, ModelError, PipelineError, PrivacyError, RejectsError)


def _root_cause(exc: BaseException) -> BaseException:
    """The first of our own errors in the exception chain (Dagster wraps step failures)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _KNOWN_ERRORS):
            return seen
        user = getattr(seen, "user_exception", None)
        seen = user if isinstance(user, BaseException) else (seen.__cause__ or seen.__context__)
    return exc


#: Held by `journeys run` for its whole run: a run's steps each open the warehouse on their own,
#: so DuckDB's file lock alone would let a second run clear the first one's staging between two
#: steps. The kernel drops the lock when the process ends, however it ends.
RUN_LOCK = ".journeys-run.lock"


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    # sources given as URIs are read by ingest with Spark's readers only
    check_paths(config, uris=config.ingest_on_spark(args.engine))
    warehouse = Path(args.warehouse)
    warehouse.mkdir(parents=True, exist_ok=True)
    with (warehouse / RUN_LOCK).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"journeys: another journeys run holds the lock of {warehouse}; waiting for "
                  "it to end", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """`journeys run`, with the warehouse's run lock held."""
    import dagster as dg

    from journey_core import quality
    from pipelines.assets import all_assets
    from pipelines.resources import JourneysResource

    # GX imports while the files are ingested (after our own imports: no two threads
    # importing the same modules at once).
    quality.warm_up()

    warehouse = Path(args.warehouse)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    resource = JourneysResource(config_path=str(args.config), warehouse_dir=str(warehouse),
                                progress=not args.verbose, full_rebuild=args.full,
                                engine=args.engine or "")
    # Failures are reported by main() in one line; -v shows Dagster's own log and stack traces.
    log_level = "DEBUG" if args.verbose else "CRITICAL"
    rejected_files: dict[str, str] = {}
    timings: list[dict[str, object]] = []
    for partition in _partitions(args):
        label = f" for partition {partition}" if partition else ""
        assets = sum(len(a.keys) for a in all_assets)
        print(f"journeys: running {assets} assets{label} for {args.config} into {warehouse}",
              file=sys.stderr)
        started = time.perf_counter()
        result = dg.materialize(
            all_assets, resources={"warehouse": resource}, instance=instance,
            raise_on_error=False, partition_key=partition,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})
        if args.timings:
            timings.append(_timings(result, time.perf_counter() - started, partition))
            Path(args.timings).write_text(json.dumps(timings, indent=2))
        if not result.success:
            print(f"journeys: {_failure_reason(result)}", file=sys.stderr)
            return 1
        rejected_files.update(_print_summary(result))
    print(f"warehouse: {warehouse / 'journeys.duckdb'}; Parquet: {warehouse / 'parquet'}/; "
          f"journey map: journeys report --warehouse {warehouse}")
    if rejected_files:
        # The good files were loaded and published; the run still fails so nobody misses it.
        problem = next(iter(rejected_files.values()))
        print(f"journeys: {len(rejected_files)} file(s) rejected, first {problem} "
              "(kept in the file ledger; fix or replace the file and run again)", file=sys.stderr)
        return 1
    return 0


def _timings(result: object, seconds: float, partition: str | None) -> dict[str, object]:
    """Where one materialize's time went, from the assets' `step_timing` metadata: building
    and checking per step, publishing, and the rest (Dagster's own work between steps)."""
    steps: dict[str, dict[str, float]] = {}
    for event in result.get_asset_materialization_events():  # type: ignore[attr-defined]
        meta = event.event_specific_data.materialization.metadata
        if "step" in meta:
            step = getattr(meta["step"], "value", meta["step"])
            steps[step] = {"build": meta["build_seconds"].value,
                           "check": meta["check_seconds"].value}
    publish = steps.pop("publish", {"build": 0.0})["build"]
    build = sum(s["build"] for s in steps.values())
    check = sum(s["check"] for s in steps.values())
    return {"partition": partition, "success": result.success,  # type: ignore[attr-defined]
            "seconds": round(seconds, 3), "build_seconds": round(build, 3),
            "check_seconds": round(check, 3), "publish_seconds": round(publish, 3),
            "dagster_seconds": round(seconds - build - check - publish, 3), "steps": steps}


def _partitions(args: argparse.Namespace) -> list[str | None]:
    """The UTC days to run, in order (`--from`/`--to`; one alone is that day); without either,
    one unpartitioned run whose as-of comes from the data."""
    first, last = args.date_from or args.date_to, args.date_to or args.date_from
    if first is None:
        return [None]
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


#: What a failed ingest check did, and what to do (see the ingest asset).
INGEST_UNDONE = ("this run's ingest was undone, so its files are new again: fix the cause (the "
                 "check's metadata, `journeys run -v`) and run again")


def _failure_reason(result: object) -> str:
    """One line: the failed blocking check (nothing was published), else the failed step."""
    for evaluation in result.get_asset_check_evaluations():  # type: ignore[attr-defined]
        if not evaluation.passed and evaluation.severity.value == "ERROR":
            failed = ", ".join(k for k in evaluation.metadata if "[" in k) or "see its metadata"
            asset = evaluation.asset_key.to_user_string()
            then = (INGEST_UNDONE if asset == INGESTED_EVENTS.name else
                    "fix the cause and run again: the files loaded stay loaded and are built "
                    "then")
            return (f"check {evaluation.check_name} on {asset} failed: {failed}; nothing was "
                    f"published, the previous tables stand; {then}")
    for event in result.get_step_failure_events():  # type: ignore[attr-defined]
        error = event.event_specific_data.error
        while error is not None and error.cause is not None:  # Dagster wraps the real error
            error = error.cause
        if error is not None:
            return f"step {event.step_key} failed: {error.message.strip()}"
    return "run failed (run with -v for Dagster's log)"


def _print_summary(result: object) -> dict[str, str]:
    """What was loaded, rejected and published, from the assets' metadata; returns the files
    rejected whole."""
    metadata = {}
    for event in result.get_asset_materialization_events():  # type: ignore[attr-defined]
        materialization = event.event_specific_data.materialization
        metadata[materialization.asset_key.to_user_string()] = materialization.metadata

    def value(key: str, name: str) -> object:
        item = metadata.get(key, {}).get(name)
        return getattr(item, "value", item)

    print(f"ingest: {value('ingested_events', 'files_loaded')} files loaded, "
          f"{value('ingested_events', 'files_skipped')} already loaded; "
          f"{value('ingested_events', 'records_read')} records read, "
          f"{value('ingested_events', 'records_loaded')} loaded, "
          f"{value('ingested_events', 'records_rejected')} rejected, "
          f"{value('ingested_events', 'records_duplicate')} duplicates")
    for table in PUBLISHED:
        print(f"published {table.name}: {value(table.name, 'dagster/row_count')} rows")
    if "published_tables" in metadata:
        print(f"run: {value('published_tables', 'mode')}, "
              f"{value('published_tables', 'persons_rebuilt')} persons rebuilt")
        print(f"engine: {value('published_tables', 'engine')}")
    rejected = value("ingested_events", "files_rejected") or {}
    for path, problem in rejected.items():  # type: ignore[union-attr]
        print(f"file rejected: {path}: {problem}")
    return dict(rejected)  # type: ignore[arg-type]



def cmd_validate(args: argparse.Namespace) -> int:
    from journey_core.ingest.validate import dry_run

    config = load_config(args.config)
    check_paths(config)
    checks = dry_run(config)
    failed = 0
    for source in checks:
        print(f"source {source.name} ({source.pattern}): {len(source.files)} files")
        if not source.files:
            print("  (no file matches yet)")
        for file in source.files:
            failed += file.error is not None
            if file.error or not args.quiet:
                print(file.line())
    files = [f for s in checks for f in s.files]
    rejects = sum(sum(f.rejects.values()) for f in files)
    print(f"config {args.config} is valid; {len(files)} files, "
          f"{sum(f.read for f in files)} records, {rejects} would be rejected, "
          f"{failed} files unreadable")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from journey_core.report import ReportError, write_report

    warehouse = Path(args.warehouse)
    if not (warehouse / WAREHOUSE_FILE).is_file():
        raise PipelineError(f"{warehouse}: no {WAREHOUSE_FILE} here; run `journeys run` first")
    try:
        out = write_report(warehouse, Path(args.out) if args.out else None)
    except ReportError as exc:
        raise PipelineError(str(exc)) from None
    print(f"wrote {out}")
    return 0


def _open_warehouse(warehouse: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    from journey_core.warehouse import connect

    if not (warehouse / WAREHOUSE_FILE).is_file():
        raise PipelineError(f"{warehouse}: no {WAREHOUSE_FILE} here; run `journeys run` first")
    try:
        return connect(warehouse, read_only=read_only)
    except duckdb.IOException as exc:
        raise PipelineError(f"{warehouse / WAREHOUSE_FILE} is in use by another process "
                            f"(a run?); try again when it ends ({exc})") from None


def cmd_forget(args: argparse.Namespace) -> int:
    from journey_core.ops.forget import forget_person
    from journey_core.privacy.erasure import compact_warehouse

    config = load_config(args.config)
    warehouse = Path(args.warehouse)
    engine = None
    if config.ingest_on_spark(args.engine):  # the ingest tables are the Spark engine's
        from journey_core.model.spark import spark_engine  # the spark extra

        engine = spark_engine(config, warehouse)
    con = _open_warehouse(warehouse, read_only=False)
    try:
        result = forget_person(con, config, warehouse, args.person, engine=engine)
    finally:
        con.close()
    compact_warehouse(warehouse)  # deleted rows' bytes would stay in the file's free blocks
    print(result.summary())
    return 0


def cmd_rejects(args: argparse.Namespace) -> int:
    from journey_core.contract.vocabulary import REJECT_REASONS
    from journey_core.ops.rejects import (
        MANIFEST,
        export_for_replay,
        matches_source,
        rejected_files,
        summarize,
    )

    if args.export and not args.config:
        raise ConfigError("journeys rejects --export needs --config (the sources' formats and "
                          "landing folders)")
    if args.engine == "spark" and not args.config:
        raise ConfigError("journeys rejects --engine spark needs --config (the Spark settings)")
    config = load_config(args.config) if args.config else None
    warehouse = Path(args.warehouse)
    con = _open_warehouse(warehouse, read_only=True)
    where = str(warehouse / WAREHOUSE_FILE)
    try:
        db: Any = con
        # ingest on the Spark engine wrote the Spark tables
        if config is not None and config.ingest_on_spark(args.engine):
            from journey_core.model.spark import spark_engine  # the spark extra

            db = spark_engine(config, warehouse)
            where = f"the Spark tables ({db.where})"
        elif (warehouse / "spark").is_dir():
            print("journeys: this warehouse has Spark tables: if its ingest runs on Spark, "
                  "pass --config and --engine spark (or engine: spark in the config) to read "
                  "their rejects; these are the DuckDB file's", file=sys.stderr)
        groups = summarize(db, args.source)
        files = rejected_files(db, args.source)
        exported = (export_for_replay(db, config, Path(args.export), args.source)
                    if args.export and config else [])
    finally:
        con.close()

    total = sum(g.records for g in groups)
    print(f"rejected records in {where}: {total}")
    if groups:
        print(f"  {'source':<14} {'failure type':<22} {'records':>7} {'first':>7}  file")
        for g in groups:
            version = f" (version {g.version})" if g.version > 1 else ""
            print(f"  {g.source:<14} {g.reason:<22} {g.records:>7} {g.first_record:>7}  "
                  f"{g.file}{version}")
            if args.verbose:
                print(f"  {'':<14} {'':<22} {'':>7} {'':>7}  e.g. {g.example}")
        by_type: dict[str, int] = {}
        for g in groups:
            by_type[g.reason] = by_type.get(g.reason, 0) + g.records
        print("by failure type: " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))
        for reason in sorted(by_type):
            print(f"  {reason}: {REJECT_REASONS.get(reason, '(no description)')}")
    for f in files:
        print(f"file rejected whole: {f.path} ({f.source}): {f.problem}")
    if exported and config:
        out = Path(args.export)
        with (out / MANIFEST).open(encoding="utf-8") as handle:
            counts: dict[str, int] = {}
            for line in list(handle)[1:]:
                name = line.split("\t", 1)[0]
                counts[name] = counts.get(name, 0) + 1
        sources = {s.name: s for s in config.sources}
        print(f"exported for replay ({out / MANIFEST} maps each record to its original):")
        for path in exported:
            source = sources[path.parent.name]
            print(f"  {path} ({counts[path.relative_to(out).as_posix()]} records): fix it, then "
                  f"move it into {config.landing_folder(source)}")
            if not matches_source(source, path.name):
                print(f"    warning: rename it to match {Path(source.path).name!r} first")
        print("put back redacted values ([redacted sha256:...]) from the source system; the "
              "next `journeys run` loads the files as new content")
    elif args.export:
        print("nothing to export")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from journey_sample import generate_sample

    truth = generate_sample(Path(args.out), customers=args.customers, prospects=args.prospects,
                            start=date.fromisoformat(args.start), days=args.days, seed=args.seed)
    print(f"wrote sample to {args.out}: {truth['totals']['read']} records")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from journey_core.contract.dictionary import data_dictionary

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(data_dictionary(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run the whole pipeline (Dagster materialize of every asset)",
        description="Ingest new files of every source in the config, rebuild every published "
        "table in DIR/journeys.duckdb and export each to DIR/parquet/<table>/. Files already in "
        "the ledger are skipped, so reruns are safe.")
    run.add_argument("--config", required=True, help="pipeline config YAML")
    run.add_argument("--warehouse", required=True, metavar="DIR", help="warehouse folder")
    run.add_argument("-v", "--verbose", action="store_true", help="show Dagster's own log")
    run.add_argument("--timings", metavar="FILE",
                     help="write where the run's time went (per step: building and checks; "
                     "publishing; Dagster's own overhead) to FILE as JSON")
    run.add_argument("--from", dest="date_from", type=_day, metavar="DATE",
                     help="first UTC day (YYYY-MM-DD) to run, a Dagster partition each")
    run.add_argument("--to", dest="date_to", type=_day, metavar="DATE",
                     help="last UTC day to run (default: --from)")
    run.add_argument("--engine", choices=ENGINES,
                     help="where the tables are built (default: the config's `engine`, else "
                     "duckdb); spark needs the spark extra and a Java runtime")
    run.add_argument("--full", action="store_true",
                     help="rebuild every person, not only those the new files touch")
    run.set_defaults(func=cmd_run)


def _add_validate(sub: Any) -> None:
    val = sub.add_parser(
        "validate", help="dry-run a config: read every source file, write nothing",
        description="Check the config, its source folders, and every file as ingest would read "
        "it: records, what would load, what would be rejected and why, unreadable files. "
        "Exit 0 when every file is readable, 1 when one is not, 2 for a bad config.")
    val.add_argument("--config", required=True, help="pipeline config YAML")
    val.add_argument("-q", "--quiet", action="store_true", help="list only unreadable files")
    val.set_defaults(func=cmd_validate)


def _add_report(sub: Any) -> None:
    rep = sub.add_parser(
        "report", help="write the journey map report (one self-contained HTML file)",
        description="Write the journey map of a warehouse built by `journeys run` as one HTML "
        "file that opens without network access.")
    rep.add_argument("--warehouse", required=True, metavar="DIR")
    rep.add_argument("--out", help="output file (default DIR/journey_map.html)")
    rep.set_defaults(func=cmd_report)


def _add_generate(sub: Any) -> None:
    gen = sub.add_parser("generate", help="generate a deterministic multichannel sample",
                         description="Write source files and ground_truth.json to --out.")
    gen.add_argument("--out", required=True, metavar="DIR")
    gen.add_argument("--customers", type=int, default=3000)
    gen.add_argument("--prospects", type=int, default=1500)
    gen.add_argument("--start", default="2026-09-01", help="first day (YYYY-MM-DD)")
    gen.add_argument("--days", type=int, default=35)
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(func=cmd_generate)


def _add_forget(sub: Any) -> None:
    fgt = sub.add_parser(
        "forget", help="erase a person from every table and Parquet export (GDPR erasure)",
        description="Delete the person's events and rejected records, remove their identifiers "
        "from other persons' events, rebuild every published table and Parquet export, compact "
        "the DuckDB file, and keep tombstones (hashes of their identifiers) so re-ingesting an "
        "old file cannot bring them back. Exit 0 when done (also when already forgotten), 1 for "
        "an unknown person or a warehouse in use, 2 for a bad config.")
    fgt.add_argument("--config", required=True, help="pipeline config YAML")
    fgt.add_argument("--warehouse", required=True, metavar="DIR", help="warehouse folder")
    fgt.add_argument("--person", required=True, metavar="ID",
                     help="person_id as in identity_map / events")
    fgt.add_argument("--engine", choices=ENGINES,
                     help="where the warehouse's runs build the tables (default: the config's "
                     "`engine`): with spark and Spark's ingest (spark.ingest: spark, the "
                     "default), the person is erased from the Spark tables too and everything "
                     "is rebuilt on Spark")
    fgt.set_defaults(func=cmd_forget)


def _add_rejects(sub: Any) -> None:
    rej = sub.add_parser(
        "rejects", help="summarize rejected records; export them for fixing and replay",
        description="Count rejected records by source, failure type and file, and list files "
        "rejected whole. With --export DIR, write each source's rejected records in the "
        "source's own format (plus DIR/replay_manifest.tsv) to be fixed and moved into the "
        "source's landing folder, where the next run loads them. Exit 0; 1 when the warehouse "
        "or an original CSV file is missing; 2 for a bad config or --export without --config.")
    rej.add_argument("--warehouse", required=True, metavar="DIR", help="warehouse folder")
    rej.add_argument("--source", help="only this source")
    rej.add_argument("--export", metavar="OUT", help="write replay files into this folder")
    rej.add_argument("--config", help="pipeline config YAML (needed with --export and "
                     "--engine spark)")
    rej.add_argument("--engine", choices=ENGINES,
                     help="where the warehouse's runs build the tables (default: the config's "
                     "`engine`): with spark, the rejects are read from the Spark tables, which "
                     "Spark's ingest writes (unless spark.ingest is duckdb)")
    rej.add_argument("-v", "--verbose", action="store_true",
                     help="show what was wrong with each group's first record")
    rej.set_defaults(func=cmd_rejects)


def _add_docs(sub: Any) -> None:
    docs = sub.add_parser("docs", help="write the data dictionary from the schema module")
    docs.add_argument("--out", default="docs/tables.md")
    docs.set_defaults(func=cmd_docs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeys",
        description="Customer journeys from multichannel touchpoint logs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_validate, _add_report, _add_generate, _add_forget, _add_rejects,
                _add_docs):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        cause = _root_cause(exc)
        if isinstance(cause, _KNOWN_ERRORS):
            print(f"journeys: {cause}", file=sys.stderr)
            return 2 if isinstance(cause, ConfigError) else 1
        raise


if __name__ == "__main__":
    sys.exit(main())
