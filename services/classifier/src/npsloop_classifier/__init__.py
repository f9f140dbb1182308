"""npsloop classifier service."""
