"""Storage: the lake's Delta tables (local or on object storage), the DuckDB ledger of source files
and runs, versioned artifacts, hourly aggregates, content hashes, locks and Prometheus metrics."""
