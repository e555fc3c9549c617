"""The absl experiment runner (`python -m din_tf.experiments.run`), its configs and
its registry of named experiments."""
