"""Ingest: landing files to canonical events, rejects and the file ledger.

`readers` turns a file into raw records (and splits text files into records for the set-based
path), `mapping` a raw record into an event or a reject, `columnar` maps whole files (Parquet,
CSV, NDJSON) in DuckDB by the same rules, `loader` commits each file with its ledger row, and
`validate` is the dry run of all of it.

Layer 4: imports `contract`, `config`, `warehouse` and `privacy`.
"""

from journey_core.ingest.loader import FileResult, IngestSummary, ingest, undo
from journey_core.ingest.readers import IngestError

__all__ = ["FileResult", "IngestError", "IngestSummary", "ingest", "undo"]
