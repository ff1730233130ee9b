"""Declarative index spec (placeholder: being written)."""
