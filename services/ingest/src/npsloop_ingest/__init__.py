"""npsloop ingest service."""
