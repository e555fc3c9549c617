"""Turns a `mask` or `lengths` argument into one boolean [B, T] step mask."""

from keras import ops

from din_tf._argument_checks import check_rank


def step_mask(layer_name, steps, time_steps, mask=None, lengths=None):
    """Returns a bool [B, T] mask (True = real step), or None if neither given.

    A float mask counts a step as real iff it equals 1, as the originals test
    `mask == 1`; `lengths` [B] marks the first `lengths[b]` steps real.
    """
    if mask is not None and lengths is not None:
        raise ValueError(
            f"{layer_name}: pass either mask or lengths, not both "
            f"(received mask of shape {tuple(mask.shape)} and lengths of shape "
            f"{tuple(lengths.shape)})."
        )
    if mask is not None:
        check_rank(f"mask of {layer_name}", mask.shape, 2)
        _check_same(layer_name, "mask", mask.shape, steps.shape[:2])
        if mask.dtype == "bool":
            return mask
        return ops.equal(mask, ops.ones_like(mask))
    if lengths is not None:
        if len(lengths.shape) == 2 and lengths.shape[-1] == 1:
            lengths = ops.squeeze(lengths, -1)
        check_rank(f"lengths of {layer_name}", lengths.shape, 1)
        _check_same(layer_name, "lengths", lengths.shape, steps.shape[:1])
        positions = ops.arange(time_steps, dtype="int32")
        return ops.less(positions[None, :], ops.cast(lengths, "int32")[:, None])
    return None


def _check_same(layer_name, arg, got, expected):
    for g, e in zip(got, expected):
        if g is not None and e is not None and g != e:
            raise ValueError(
                f"{layer_name}: {arg} has shape {tuple(got)}, expected "
                f"{tuple(expected)} to match the sequence's leading axes."
            )
