"""Adam that touches only the embedding rows present in the batch."""

import keras
import tensorflow as tf

from din_tf.api_export import din_tf_export
from din_tf.training.gradients import merge_duplicate_rows


@din_tf_export("din_tf.training.LazyAdam")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (IndexedSlices) updates read and write only the rows
    in the gradient; dense gradients follow `keras.optimizers.Adam` exactly.

    Semantics differ from the originals' TF1 Adam, which decays the moments of
    **every** row each step and moves rows absent from the batch with their
    momentum (spec §11): here an absent row, its moments and its step count
    stay untouched until the row next appears (the bias correction still uses
    the global step). This is the fast option: cost proportional to the
    batch's rows instead of the table size. Duplicate ids are merged before
    the update. Keras' own Adam on IndexedSlices is neither: it updates the
    moments per slice (duplicates counted separately) but the variable densely.
    """

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        gradient = merge_duplicate_rows(gradient)
        dtype = variable.dtype
        rows = gradient.indices
        g = tf.cast(gradient.values, dtype)
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))

        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = tf.gather(m.value, rows) * beta_1 + g * (1 - beta_1)
        v_rows = tf.gather(v.value, rows) * beta_2 + tf.square(g) * (1 - beta_2)
        # The TF-backend optimizer turns IndexedSlices assignments into scatters.
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            v_rows = tf.maximum(tf.gather(v_hat.value, rows), v_rows)
            self.assign(v_hat, tf.IndexedSlices(v_rows, rows))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(step_rows, rows))
