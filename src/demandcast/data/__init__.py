"""Data: the canonical schema, loading a user's file, validation and the synthetic generator."""
