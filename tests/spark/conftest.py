"""The Spark tests' fixtures: a Spark session serving Spark Connect, and a client of it, one
of each per test module (a module's tests share its JVM; each module has its own, so that the
parallel runner can run two Spark modules at once)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.spark.common import HOST_TZ, fail_if_missing

if TYPE_CHECKING:  # pyspark is imported only where Spark runs (see `common.MISSING`)
    from pyspark.sql import SparkSession

    from journey_core.model.spark import SparkEngine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One Spark session (`local[2]`) for the module, on a host whose time zone is not UTC,
    serving Spark Connect on a free port (as the README says to serve a warehouse's tables)."""
    fail_if_missing()
    from journey_core.model.spark import spark_session

    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = HOST_TZ
    time.tzset()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spark = spark_session(tmp_path_factory.mktemp("spark") / "warehouse",
                          conf={"spark.driver.memory": "1g",
                                # tiny data on two cores: few partitions, no re-planning
                                "spark.sql.shuffle.partitions": "2",
                                "spark.sql.adaptive.enabled": "false",
                                "spark.driver.extraJavaOptions": f"-Duser.timezone={HOST_TZ}",
                                "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
                                "spark.connect.grpc.binding.port": str(port)})
    try:
        yield spark
    finally:
        spark.stop()
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


@pytest.fixture(scope="module")
def engine(server: SparkSession) -> Iterator[SparkEngine]:
    """The engine the small fixtures build on: a Spark Connect client of `server`, made as
    `journeys run` makes one for `master: sc://localhost:<port>` (its own session on the
    server, with the pinned settings; the tables are the server's)."""
    from journey_core.model.spark import SparkEngine, spark_session

    port = server.conf.get("spark.connect.grpc.binding.port")
    client = spark_session("unused: the server's", master=f"sc://localhost:{port}",
                           conf={"spark.sql.shuffle.partitions": "2",
                                 "spark.driver.memory": "ignored: the server's"})
    try:
        yield SparkEngine(client)
    finally:
        client.stop()
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)  # this process is a client no more
