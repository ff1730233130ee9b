"""The performance report's loader bundles as presets (placeholder: being written)."""
