"""npsloop notifier service."""
