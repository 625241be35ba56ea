-- rejected_events: the records ingest could not load, kept verbatim (personal data redacted)
-- with the file, its version, the record number and failure type: the published copy of the
-- quarantine.
select
    source,
    file,
    file_version,
    record_number,
    raw_record,
    reason,
    detail,
    rejected_at
from ingest_rejects
