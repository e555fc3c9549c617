"""One decorator that both registers a class with Keras serialization and
records its public path, so `din_tf.layers.X` and a saved `.keras` file agree
on the name."""

import keras

PUBLIC_API = {}


def din_tf_export(path):
    """Registers `cls` as Keras-serializable under `din_tf>ClassName`.

    Args:
        path: the public dotted name, e.g. "din_tf.layers.DINAttention". Its
            last component must equal the class name.
    """

    def decorator(cls):
        name = path.rsplit(".", 1)[-1]
        if name != cls.__name__:
            raise ValueError(
                f"din_tf_export path {path!r} ends in {name!r}, expected the "
                f"class name {cls.__name__!r}."
            )
        PUBLIC_API[path] = cls
        return keras.saving.register_keras_serializable(package="din_tf", name=name)(cls)

    return decorator
