"""Portable query building blocks (placeholder: being written)."""
