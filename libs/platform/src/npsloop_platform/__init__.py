"""Shared platform code for npsloop services."""
