"""The Spark engine: the same models, table graph, builder and identity rules on Apache Spark.

`SparkEngine` implements the engine seam (`journey_core.model.engine.Engine`) over a
`SparkSession` or a Spark Connect client's. Every statement reaching it is written in DuckDB's
dialect (the models of `sql/`, the builder's, planner's and stitcher's statements) and is
transpiled here with sqlglot each time it runs:

- **Schemas** are Spark databases. DuckDB's search path (`Engine.use`) has no Spark
  counterpart, so every unqualified table name is qualified here with the first schema of the
  path that holds it (a new table goes to the first schema), as DuckDB resolves it.
- **Parameters** stay bound: `$name` becomes Spark's `:name` and `?` the named `:p<i>`,
  passed as `args`, never pasted into the text.
- **Tables** are Parquet tables under the session's warehouse. `create or replace table` (which
  Spark's session catalog cannot do) drops and creates; a table of the contract
  (`journey_core.contract.schema.TABLES`) is cast to the contract's column types, since Spark's
  result types drift (`int` for `bigint`, decimals for doubles).
- **Temporary tables** (the stitcher's) are local checkpoints behind temporary views.
- **Identity** labels connected components in SQL alone (`label_components_sql`): the edges
  never leave the cluster; only the few components holding two customer_ids are walked link
  by link on the driver, exactly as on DuckDB.

The session settings that make results equal DuckDB's are pinned by `spark_session` (UTC
session time zone, ANSI mode). A session started here keeps its catalog in a Hive metastore
beside its tables (`_catalog_home`), so runs are incremental as on DuckDB: the builder's, planner's
and publisher's statements are SQL both engines run (Spark's Parquet tables cannot delete or
update rows: a published table is replaced whole, by a rename).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from journey_core.config import Config
from journey_core.contract.schema import TABLES, Column
from journey_core.identity import label_components_sql
from journey_core.model.build import STAGED_PREFIX
from journey_core.warehouse import Params
from journey_core.warehouse.quoting import ident

# PySpark 4.3 warns at every import of its modules (here, and GX's of its Spark data source)
# that it does not fully support pandas 3; nothing here goes through pandas (results come back
# as Arrow).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)
from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark import SparkContext  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402
from pyspark.logger import PySparkLogger  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql.connect.session import SparkSession as ConnectSession  # noqa: E402
from pyspark.sql.pandas.types import from_arrow_schema  # noqa: E402

#: A session started here (or by spark-submit), or a Spark Connect client.
Session = SparkSession | ConnectSession

# PySpark logs every failed statement's error (with the JVM's stack trace) as JSON on stderr
# when the exception is made; the exception itself reaches the caller, who reports it.
for _name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
    PySparkLogger.getLogger(_name).setLevel(logging.CRITICAL)

#: Settings every Spark session of the pipeline runs with (results equal DuckDB's).
SPARK_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.sources.default": "parquet",
    "spark.sql.legacy.createHiveTableByDefault": "false",
    # Parquet as DuckDB writes it: instants as UTC microseconds (not INT96), zstd
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
}
#: Settings only a session started here can take (a Spark Connect server has its own).
_LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}
#: Contract types Spark has no name for, and what they are stored as.
_SPARK_TYPES = {"json": "varchar"}


def _spark_type(column: Column) -> str:
    """The column's contract type, in DuckDB's words, as Spark can store it."""
    return _SPARK_TYPES.get(column.type, column.type)


def _catalog_home(warehouse: str) -> Path | None:
    """Where a session started here keeps its table catalog: beside a local `warehouse`, so
    that the next run's session knows the tables, the pipeline state and the ledger this one
    left. None for a warehouse on an object store, which needs a metastore of its own (`conf`:
    `spark.hadoop.hive.metastore.uris`, or the cluster's); without one the catalog is the
    session's, in memory."""
    if "://" in warehouse and not warehouse.startswith("file:"):
        return None
    return Path(warehouse.removeprefix("file:")).absolute()


def _metastore(home: Path | None) -> dict[str, str]:
    """Hive's metastore in an embedded Derby database, `<home>/metastore_db`."""
    if home is None:
        return {}
    return {"spark.sql.catalogImplementation": "hive",
            "spark.hadoop.javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"}


#: The driver's log settings for a session started here: errors only.
_LOG4J = Path(__file__).with_name("log4j2.properties")
#: The master of a session started here when neither the config nor spark-submit names one.
DEFAULT_MASTER = "local[2]"


def submitted() -> bool:
    """This process is a driver that `spark-submit` started: its JVM is spark-submit's, so
    the master, the driver's memory and its Java options are what spark-submit was given."""
    return "PYSPARK_GATEWAY_PORT" in os.environ  # how spark-submit hands PySpark its JVM


def spark_session(warehouse: str | Path, *, master: str | None = None,
                  conf: Mapping[str, str] | None = None) -> Session:
    """A Spark session with the pipeline's settings, its tables under `warehouse` and (for a
    local `warehouse`) their catalog persisted there (`_catalog_home`); `conf` adds to or
    overrides the defaults (not the pinned `SPARK_SETTINGS`; Java options are added to).

    `master` None is spark-submit's master in a driver it started (`submitted`), else
    `DEFAULT_MASTER`. A `master` of `sc://host:port` connects to a Spark Connect server (whose
    warehouse, catalog and static settings are its own: of `conf`, only `spark.sql.*` is sent);
    a process may hold such a client beside a session of its own, but is marked a client from
    then on (PySpark's functions build the client's columns, not that session's)."""
    conf = dict(conf or {})
    defaults = {"spark.sql.shuffle.partitions": "8"}
    if master is not None and _is_connect(master):
        # The process is a Connect client, as `SparkSession.builder.remote` would mark it:
        # PySpark's functions (GX's Spark metrics are made of them) then build the client's
        # columns. (That builder refuses a client in a process holding a session of its own.)
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        builder = ConnectSession.builder.appName("journeys").remote(master)
        # the server's static settings are its own: a client may set only SQL settings
        conf = {k: v for k, v in conf.items() if k.startswith("spark.sql.")}
    else:
        # the Python workers (ingest's mapping) run this interpreter, which has the journeys
        # package (PySpark's default is the `python3` on the PATH); a cluster's workers run
        # what `spark.pyspark.python` or their PYSPARK_PYTHON says
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName("journeys")
        if master is not None or not submitted():
            builder = builder.master(master or DEFAULT_MASTER)
        home = _catalog_home(str(warehouse))
        java = [f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}",
                # Derby's log beside its database, not in the working directory
                f"-Dderby.system.home={home}" if home else "",
                conf.pop("spark.driver.extraJavaOptions", "")]
        defaults.update({"spark.sql.warehouse.dir": str(warehouse), **_metastore(home),
                         **_LOCAL_SETTINGS,
                         "spark.driver.extraJavaOptions": " ".join(o for o in java if o)})
        if submitted():  # spark-submit's JVM runs already: the Java options above come too late
            _derby_home(home)
            # Spark loads its own log profile (INFO) there as its context starts, whatever log
            # settings the JVM has: errors only from the start of the context
            defaults["spark.log.level"] = "ERROR"
    for key, value in {**defaults, **conf, **SPARK_SETTINGS}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if isinstance(spark, SparkSession):
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def _derby_home(home: Path | None) -> None:
    """Derby's log beside its database (`-Dderby.system.home`), set in the JVM spark-submit
    started, before the metastore first opens it."""
    if home is not None:
        SparkContext._ensure_initialized()  # PySpark's gateway to that JVM
        SparkContext._jvm.java.lang.System.setProperty("derby.system.home", str(home))


def _is_connect(master: str) -> bool:
    """A Spark Connect server's address, not a master a session is started with."""
    return master.startswith("sc://")


def spark_engine(config: Config, warehouse_dir: Path) -> SparkEngine:
    """The Spark engine of a run into `warehouse_dir`, from the config's `spark:` settings
    (tables under `<warehouse_dir>/spark` unless `spark.warehouse` says where)."""
    location = config.spark.warehouse or str((warehouse_dir / "spark").absolute())
    spark = spark_session(location, master=config.spark.master, conf=config.spark.conf)
    if not isinstance(spark, SparkSession):
        return SparkEngine(spark, f"spark connect {config.spark.master}")
    if not spark.catalog.databaseExists("main"):
        _clear_locations(spark, location)
    by = " (spark-submit)" if submitted() else ""
    return SparkEngine(spark, f"spark {spark.sparkContext.master}{by}")


#: The schemas (Spark databases) the pipeline writes.
_SCHEMAS = ("main", "staging", "delta")


def _clear_locations(spark: SparkSession, location: str) -> None:
    """Remove the table folders left under `location` that the catalog does not know (its
    metastore was deleted, or it is in memory): Spark refuses to create a table where a
    folder of that name exists. (Through Hadoop's file system API: the location
    may be an object store.)"""
    jvm = spark._jvm  # type: ignore[attr-defined]
    hadoop = spark._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    for schema in _SCHEMAS:
        path = jvm.org.apache.hadoop.fs.Path(f"{location.rstrip('/')}/{schema}.db")
        path.getFileSystem(hadoop).delete(path, True)


class SparkEngine:
    """The engine seam on a Spark session (see the module docstring)."""

    errors: tuple[type[Exception], ...] = (PySparkException, Py4JJavaError,
                                           sqlglot.errors.SqlglotError)

    def __init__(self, spark: Session, where: str = "spark") -> None:
        self.spark = spark
        self.where = where
        self._path: tuple[str, ...] = ("main",)
        #: Temporary tables: local checkpoints behind temporary views.
        self._temps: dict[str, DataFrame] = {}
        #: Arrow tables read as tables (`register`), by name.
        self._registered: set[str] = set()
        #: The permanent tables and views of each schema (lower case) as the catalog last
        #: listed them, kept true by every statement that creates, drops or renames one
        #: (`_note`) and forgotten when a schema is dropped: every table a statement names is
        #: looked up (`_qualify`), and each listing is two calls to the catalog, a round trip
        #: each to a Spark Connect server.
        self._catalog: dict[str, frozenset[str]] = {}

    # -- translation -----------------------------------------------------------------------

    def _qualify(self, tree: exp.Expression) -> None:
        """Qualify every table name as DuckDB's search path would resolve it (a table renamed
        stays in its schema, as in DuckDB)."""
        renamed = [r.this for r in tree.find_all(exp.AlterRename)] \
            if isinstance(tree, exp.Alter) else []
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        target = tree.this if isinstance(tree, exp.Create | exp.Insert) else None
        if isinstance(target, exp.Schema):
            target = target.this
        for table in tree.find_all(exp.Table):
            if table.args.get("db") or not table.name or table.name in ctes \
                    or any(table is new for new in renamed):
                continue
            if table is target and isinstance(tree, exp.Create):
                if not self._is_temp(tree):
                    table.set("db", exp.to_identifier(self._path[0]))
                continue
            if table.name in self._temps or table.name in self._registered:
                continue
            for schema in self._path:
                if self.exists(schema, table.name):
                    table.set("db", exp.to_identifier(schema))
                    break
        for new in renamed:  # the new name of a table renamed: in the table's schema
            if not new.args.get("db") and tree.this.args.get("db"):
                new.set("db", tree.this.args["db"].copy())

    @staticmethod
    def _functions(tree: exp.Expression) -> None:
        """DuckDB functions sqlglot leaves as they are: `list_extract(list, i)` (1-based) is
        Spark's `element_at` (`list[i]` would be 0-based there)."""
        for node in list(tree.find_all(exp.Anonymous)):
            if node.name.lower() in ("list_extract", "list_element", "array_extract"):
                node.replace(exp.Anonymous(this="element_at", expressions=node.expressions))

    @staticmethod
    def _is_temp(tree: exp.Expression) -> bool:
        props = tree.args.get("properties")
        return bool(props and props.find(exp.TemporaryProperty))

    def _bind(self, tree: exp.Expression, params: Params) -> dict[str, Any]:
        """Spark's named arguments for the statement's parameters (`?` becomes `:p<i>`)."""
        if not params:
            return {}
        if isinstance(params, Mapping):
            used = {p.this for p in tree.find_all(exp.Placeholder) if p.this}
            return {k: v for k, v in params.items() if k in used}
        args = {}
        positional = [p for p in tree.find_all(exp.Placeholder, bfs=False) if not p.this]
        for i, (node, value) in enumerate(zip(positional, params, strict=True)):
            node.set("this", f"p{i}")
            args[f"p{i}"] = value
        return args

    def _contract_select(self, target: exp.Table, select: exp.Expression) -> exp.Expression:
        """The select cast to the contract's column types, when the target is a contract
        table (or a published table staged under `_staged_<name>`)."""
        spec = TABLES.get(target.name.removeprefix(STAGED_PREFIX))
        columns = getattr(spec, "columns", None)
        if not columns:
            return select
        casts = [exp.cast(exp.column(c.name, quoted=True),
                          exp.DataType.build(_spark_type(c), dialect="duckdb")
                          ).as_(c.name, quoted=True) for c in columns]
        return exp.select(*casts).from_(exp.Subquery(this=select, alias=exp.to_identifier(
            "_contract")))

    def _sql(self, sql: str, params: Params) -> DataFrame | None:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if isinstance(tree, exp.Command):
            raise sqlglot.errors.ParseError(f"not translatable to Spark SQL: {sql.strip()[:120]}")
        args = self._bind(tree, params)
        self._qualify(tree)
        self._functions(tree)
        if isinstance(tree, exp.Create) and self._is_temp(tree) and tree.kind == "TABLE":
            return self._temp_table(tree.this.name, tree.expression, args)
        dropped = tree.find(exp.Table) if isinstance(tree, exp.Drop) else None
        if dropped is not None and dropped.name in self._temps:
            del self._temps[dropped.name]
            self.spark.catalog.dropTempView(dropped.name)
            return None
        if isinstance(tree, exp.Create) and tree.kind == "TABLE":
            if tree.expression is not None:
                tree.set("expression", self._contract_select(tree.this, tree.expression))
            if tree.args.get("replace"):
                tree.set("replace", False)
                self.spark.sql(f"drop table if exists {tree.this.sql(dialect='spark')}")
        frame = self.spark.sql(tree.sql(dialect="spark"), args=args or None)
        if isinstance(tree, exp.Create | exp.Drop | exp.Alter):
            self._note(tree)  # run by now: Spark runs a command as it is given
        return frame

    def _note(self, tree: exp.Create | exp.Drop | exp.Alter) -> None:
        """The cached listing (`_catalog`) after a statement that created, dropped or altered
        a table or view: its name added, removed or moved; anything else forgets the listing.
        (Every name is qualified by now, `_qualify`; one left unqualified was not found, or is
        a temporary view's, which the listing leaves out.)"""
        def change(table: exp.Expression, *, add: bool) -> None:
            if table.db in self._catalog:
                names = self._catalog[table.db] - {table.name.lower()}
                self._catalog[table.db] = names | {table.name.lower()} if add else names

        if isinstance(tree, exp.Drop) and tree.kind in ("TABLE", "VIEW"):
            for table in tree.args.get("tables") or [tree.this]:
                change(table, add=False)
            return
        if isinstance(tree, exp.Create) and tree.kind in ("TABLE", "VIEW"):
            if not self._is_temp(tree):
                change(tree.this.this if isinstance(tree.this, exp.Schema) else tree.this,
                       add=True)
            return
        renames = list(tree.find_all(exp.AlterRename)) if isinstance(tree, exp.Alter) else []
        if isinstance(tree, exp.Alter) and tree.this.db and len(renames) <= 1:
            for rename in renames:  # columns or properties altered: the names stay
                change(tree.this, add=False)
                change(rename.this, add=True)
            return
        self._catalog.clear()

    def _temp_table(self, name: str, select: exp.Expression, args: dict[str, Any]) -> None:
        """A temporary table: the select's rows, computed now and kept without their lineage
        (a local checkpoint), behind a temporary view. (A cached view would be recomputed
        whenever a table it was computed from is replaced, and an iteration's plans would
        grow with every round.)"""
        frame = self.spark.sql(select.sql(dialect="spark"), args=args or None)
        self._temps[name] = frame.localCheckpoint(eager=True)
        self._temps[name].createOrReplaceTempView(name)

    # -- the Engine protocol ----------------------------------------------------------------

    def execute(self, sql: str, params: Params = None) -> None:
        frame = self._sql(sql, params)
        if frame is not None and frame.columns:
            frame.collect()  # a query run for its effect: run it

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        frame = self._sql(sql, params)
        if frame is None:
            raise ValueError(f"not a query: {sql.strip()[:120]}")
        return frame.toArrow()

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        # through Arrow: timestamps come back as instants in UTC, as DuckDB's do
        table = self.arrow(sql, params)
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def scalar(self, sql: str, params: Params = None) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def create_table(self, target: str, select: str, params: Params = None) -> None:
        self.execute(f"create or replace table {target} as\n{select}", params)

    def create_view(self, target: str, select: str) -> None:
        self.execute(f"create or replace view {target} as\n{select}")

    def exists(self, schema: str, name: str) -> bool:
        known = self._catalog.get(schema)
        if known is None:
            catalog = self.spark.catalog
            known = frozenset(t.name.lower() for t in catalog.listTables(schema)
                              if not t.isTemporary) if catalog.databaseExists(schema) \
                else frozenset()
            self._catalog[schema] = known
        return name.lower() in known  # the catalog's names are lower case

    def tables(self, schema: str) -> list[str]:
        if not self.spark.catalog.databaseExists(schema):
            return []
        return [t.name for t in self.spark.catalog.listTables(schema)
                if t.tableType != "VIEW" and not t.isTemporary]

    def ensure_tables(self, names: list[str]) -> None:
        for name in names:
            if not self.exists("main", name):
                spec = TABLES[name]
                cols = ", ".join(f"{ident(c.name)} {_spark_type(c)}" for c in spec.columns)
                self.execute(f"create table main.{ident(name)} ({cols})")

    def use(self, *schemas: str) -> None:
        # every name is qualified from the path (`_qualify`): Spark's current database is unused
        self._path = schemas
        self.create_schema(schemas[0])

    def create_schema(self, name: str) -> None:
        # the cached listing stays true: a schema that existed keeps its tables, a new one
        # has none (and is listed when first looked up)
        self.spark.sql(f"create database if not exists {self._name(name)}")

    def drop_schema(self, name: str) -> None:
        self._catalog.pop(name, None)
        self.spark.sql(f"drop database if exists {self._name(name)} cascade")

    @staticmethod
    def _name(name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect="spark")

    @contextmanager
    def register(self, name: str, table: pa.Table) -> Iterator[None]:
        # the schema given, not inferred: a Spark Connect client cannot infer one from no rows
        # (naive instants as Spark's TIMESTAMP, as a session infers them by default)
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=False)
        with self.view(name, self.spark.createDataFrame(table, schema=schema)):
            yield

    @contextmanager
    def view(self, name: str, frame: DataFrame) -> Iterator[None]:
        """`name` reads `frame` while the block runs."""
        frame.createOrReplaceTempView(name)
        self._registered.add(name)
        try:
            yield
        finally:
            self._registered.discard(name)
            self.spark.catalog.dropTempView(name)

    def load_parquet(self, target: str, path: str | Path) -> None:
        """`target` (a quoted name; a contract table is cast to its types) becomes a table of
        the Parquet files under `path`, read by Spark's reader where they are."""
        with self.view("_parquet", self.spark.read.parquet(str(path))):
            self.create_table(target, "select * from _parquet")

    def write_parquet(self, select: str, folder: Path, params: Params = None, *,
                      one_file: bool = False) -> None:
        """Write the select's rows as Parquet files into the new `folder`: one `data.parquet`
        (`one_file`), else `data_<n>.parquet` files, as DuckDB names them (Spark's own part
        names and checksum files are renamed and removed on a local file system)."""
        frame = self._sql(select, params)
        if frame is None:
            raise ValueError(f"not a query: {select.strip()[:120]}")
        (frame.coalesce(1) if one_file else frame).write.mode("error").parquet(
            str(folder))
        if folder.is_dir():
            for junk in [*folder.glob(".*.crc"), *folder.glob("_SUCCESS")]:
                junk.unlink()
            parts = sorted(folder.glob("part-*.parquet"))
            for n, part in enumerate(parts):
                part.rename(folder / ("data.parquet" if one_file else f"data_{n}.parquet"))

    def label_components(self) -> int:
        return label_components_sql(self)
