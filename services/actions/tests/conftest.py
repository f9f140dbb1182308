from .factory import clock, ctx, db

__all__ = ["clock", "ctx", "db"]
