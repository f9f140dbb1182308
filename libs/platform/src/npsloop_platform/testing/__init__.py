"""Test fixtures shared by every npsloop test suite (loaded with `-p npsloop_platform.testing.plugin`)."""
