"""npsloop actions service."""
