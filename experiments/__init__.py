"""The absl experiment runner (`python -m experiments.run`), its configs and
its registry of named experiments."""
