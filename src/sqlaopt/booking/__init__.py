"""The reference booking domain: schema, sample data and the report's query patterns."""

from .sample import SampleSize, build_sample

__all__ = ["SampleSize", "build_sample"]
