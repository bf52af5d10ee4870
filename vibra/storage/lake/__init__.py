"""The lake: Delta Lake tables ``data/lake/<table>/`` partitioned ``date=YYYY-MM-DD/equipment=<id>/``, on local
disk or object storage; callers use ``from vibra.storage import lake`` and the names below.

The data files stay Parquet in the same folders; which of them make up the table is
what the table's transaction log (``<table>/_delta_log/``, written through
``deltalake``, delta-rs) says. A writer writes its file (hidden temporary name, then
renamed into place) and then commits it; a file removed from the table (compaction,
retention, a replaced recording) is removed by a commit in the same transaction as
its successor, so a reader listing the table's files sees the old ones or the new
ones, never both and never neither. A file on disk that no commit names (a writer
killed between its rename and its commit) is invisible; ``vibra doctor --repair``
deletes it. Readers therefore list files through :func:`partition_files`, never by
globbing folders. ``raw`` is not a table of rows: its one-file-per-recording
waveforms stay plain files (``vibra.storage.raw``).

:mod:`.files` where a file lies and how one is written; :mod:`.log` what a table holds, from its log, and
what a failed read means; :mod:`.commits` changing a table (commit, create, compact, vacuum);
:mod:`.partitions` frames written by partition, read back, and a recording's rows removed.
"""

from vibra.storage.lake.commits import (
    WRITER_FILE,
    commit,
    compact,
    convert,
    create,
    delete_partitions,
    ensure_table,
    remove_files,
    untracked,
    vacuum,
    writer_id,
)
from vibra.storage.lake.files import (
    LOG_DIR,
    OWN_FILE,
    PARTITION_BY,
    RAW,
    READ_FILES,
    RECORDING_FILE,
    partition_dir,
    partition_of,
    push,
    read_json,
    sql_literal,
    table_dir_of,
    unlink,
    write_bytes,
    write_json,
    write_text,
)
from vibra.storage.lake.log import (
    DISK_ERRORS,
    GONE,
    active,
    changed,
    damaged,
    forget,
    has_files,
    is_table,
    on_disk,
    partition_dates,
    partition_files,
    reading,
    sizes,
    tables_in,
    translate,
    translated,
)
from vibra.storage.lake.partitions import (
    read_frame,
    recording_partitions,
    remove_recordings,
    write_files,
    write_parquet,
    write_partitioned,
)

__all__ = [
    "DISK_ERRORS", "GONE", "LOG_DIR", "OWN_FILE", "PARTITION_BY", "RAW", "READ_FILES", "RECORDING_FILE", "WRITER_FILE",
    "active", "changed", "commit", "compact", "convert", "create", "damaged", "delete_partitions", "ensure_table",
    "forget", "has_files", "is_table", "on_disk", "partition_dates", "partition_dir", "partition_files", "partition_of",
    "push", "read_frame", "read_json", "reading", "recording_partitions", "remove_files", "remove_recordings", "sizes",
    "sql_literal", "table_dir_of", "tables_in", "translate", "translated", "unlink", "untracked", "vacuum",
    "write_bytes", "write_files", "write_json", "write_parquet", "write_partitioned", "write_text", "writer_id",
]
