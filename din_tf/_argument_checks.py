"""Argument checks shared by din_tf.layers, din_tf.models and din_tf.export:
every error names the argument, the value received and what was expected."""


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Invalid {name}={value!r}; expected one of {sorted(choices)}."
        )
    return value


def check_rank(name, shape, ranks):
    """Checks a static shape's rank; `ranks` is an int or a tuple of ints."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if shape is None:
        return
    if len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"Invalid {name}: expected a rank-{expected} tensor, received shape "
            f"{tuple(shape)} (rank {len(shape)})."
        )


def check_dim(name, shape, axis, expected, what):
    """Checks `shape[axis] == expected` when both are statically known."""
    got = shape[axis]
    if got is not None and expected is not None and got != expected:
        raise ValueError(
            f"Invalid {name}: expected {what} = {expected} at axis {axis}, "
            f"received shape {tuple(shape)}."
        )


def check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Invalid {name}={value!r}; expected a positive integer.")
    return value


def check_min_rank(name, shape, min_rank):
    if shape is not None and len(shape) < min_rank:
        raise ValueError(
            f"Invalid {name}: expected a tensor of rank {min_rank} or more, received "
            f"shape {tuple(shape)} (rank {len(shape)})."
        )
