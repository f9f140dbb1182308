"""npsloop: the one-process embedded runner and CLI."""
