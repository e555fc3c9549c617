"""Original TF1 variable names of one layer's weights, for the models'
`original_variable_map()` (loading the originals' checkpoints)."""


def dense_map(prefix, dense):
    """{"<prefix>/kernel", "<prefix>/bias"} of a Dense layer (tf.layers.dense)."""
    return {f"{prefix}/kernel": dense.kernel, f"{prefix}/bias": dense.bias}


def batch_norm_map(prefix, bn):
    """gamma, beta and the moving statistics of a (Frozen)BatchNorm under `prefix`."""
    return {f"{prefix}/{k}": getattr(bn, k)
            for k in ("gamma", "beta", "moving_mean", "moving_variance")}
