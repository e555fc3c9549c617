"""Deprecated alias: the runner moved to `din_tf.experiments` (use
`python -m din_tf.experiments.run`). This folder exists only in the checkout,
is not installed, and goes away in the next release."""

import warnings

warnings.warn("The `experiments` package moved to `din_tf.experiments`; "
              "`experiments` is a deprecated alias that the next release removes.",
              DeprecationWarning, stacklevel=2)
