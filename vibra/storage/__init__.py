"""Storage: the hive-partitioned Parquet lake, the DuckDB catalog and file locks."""
