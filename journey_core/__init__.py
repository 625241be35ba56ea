"""journeys' library: customer journeys from multichannel touchpoint logs. It never imports
Dagster (`pipelines/` does the orchestration).

Packages follow the data flow, and a package imports only the layers below it (a test,
`tests/unit/test_layers.py`, keeps it so, function-local imports included):

0. `contract`   tables (columns, grain, keys, person scope), the vocabulary, the data dictionary
1. `config`     the typed YAML config
2. `warehouse`  the DuckDB file: connections, settings, table creation, quoting of names
3. `privacy`    the salt, personal data hashed and redacted, tombstones, erasure
4. `ingest`     landing files to events, rejects and the file ledger
4. `identity`   identifiers stitched into persons
5. `model`      the SQL models, their table graph, the run context, builds, incremental runs
5. `quality`    the expectation suites of every checked table
6. `publish`    staged tables and Parquet exports published at once
6. `report`     the journey map
7. `ops`        the one layer that composes the stages: run, forget, rejects export
"""
