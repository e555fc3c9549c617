"""The GRU-family recurrence over a whole (time-major) sequence, with a
hand-written backward pass.

TF's automatic gradient of a `tf.while_loop` replays every forward op per
step and accumulates the weight gradients with two small matmuls per step.
Here the backward loop does only what is inherently sequential (two
[B, .] x [., H] matmuls per step to carry the state gradient); the weight
gradients are one large matmul over all steps after the loop.
"""

import tensorflow as tf


def gru_states(cell, projected, attention, valid, kernels):
    """Runs `cell` over time; returns the state after every step, [T, B, H].

    Args:
        cell: a `GRUCell` (or subclass): supplies `units`, `reset_after`,
            `keep` and `keep_gradients`.
        projected: [T, B, 3H], the inputs' share of both matmuls plus biases
            (`cell.project_inputs`), time-major.
        attention: [T, B, 1] per-step weights used inside the step, or None.
        valid: [T, B, 1] bool, False at padded steps (state carried through),
            or None when every step is real.
        kernels: `(gates_h [H, 2H], candidate_h [H, H])`, the state rows.

    The states are carried through padded steps, so the final state is the
    last row and the outputs are the states zeroed at padded steps.
    """
    units = cell.units
    uses_attention = attention is not None
    differentiable = [projected, kernels[0], kernels[1]]
    if uses_attention:
        differentiable.append(attention)

    @tf.custom_gradient
    def run(*args):
        projected, gates_h, candidate_h = args[:3]
        attention = args[3] if uses_attention else None
        steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
        dtype = projected.dtype
        inputs = _unstack(projected, steps)
        weights = _unstack(attention, steps) if uses_attention else None
        real = _unstack(valid, steps) if valid is not None else None

        def body(t, state, states, gates, candidates):
            a = weights.read(t) if uses_attention else None
            new, g, stored = cell.step_with_cache(inputs.read(t), state, a,
                                                  (gates_h, candidate_h))
            if real is not None:
                new = tf.where(real.read(t), new, state)
            return (t + 1, new, states.write(t, new), gates.write(t, g),
                    candidates.write(t, stored))

        width = 2 * units if cell.reset_after else units
        _, _, states, gates, candidates = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), tf.zeros((batch, units), dtype),
             _array(dtype, steps, units), _array(dtype, steps, 2 * units),
             _array(dtype, steps, width)),
            maximum_iterations=steps)
        # An empty TensorArray (T = 0, users without history) stacks to an
        # unknown width; the reshape restores [T, B, width] at no cost.
        states = tf.reshape(states.stack(), (steps, batch, units))
        gates = tf.reshape(gates.stack(), (steps, batch, 2 * units))
        candidates = tf.reshape(candidates.stack(), (steps, batch, width))

        def grad(d_states):
            return _backward(cell, d_states, states, gates, candidates, attention, valid,
                             gates_h, candidate_h)

        return states, grad

    return run(*differentiable)


def _backward(cell, d_states, states, gates, candidates, attention, valid, gates_h,
              candidate_h):
    units = cell.units
    steps, batch = tf.shape(states)[0], tf.shape(states)[1]
    dtype = states.dtype
    previous = tf.concat([tf.zeros_like(states[:1]), states[:-1]], axis=0)  # h_{t-1}
    uses_attention = attention is not None
    reads = [_unstack(x, steps) for x in (d_states, previous, gates, candidates)]
    weights = _unstack(attention, steps) if uses_attention else None
    real = _unstack(valid, steps) if valid is not None else None
    gates_h_t, candidate_h_t = tf.transpose(gates_h), tf.transpose(candidate_h)

    def body(i, d_state, d_projected, d_attention):
        t = steps - 1 - i
        d_out, h, g, stored = (x.read(t) for x in reads)
        total = d_out + d_state                  # dL/d(state after step t)
        if real is not None:
            is_real = real.read(t)
            d_new = tf.where(is_real, total, tf.zeros_like(total))
            d_h = tf.where(is_real, tf.zeros_like(total), total)   # carried through
        else:
            d_new, d_h = total, None
        a = weights.read(t) if uses_attention else None
        r, u = g[:, :units], g[:, units:]
        c = stored[:, :units]
        k = cell.keep(u, a)
        d_keep = d_new * (h - c)
        d_h = d_new * k if d_h is None else d_h + d_new * k
        d_c = d_new * (1.0 - k) * (1.0 - c * c)          # through tanh
        if cell.reset_after:
            d_h += tf.matmul(d_c * r, candidate_h_t)
            d_r = d_c * stored[:, units:]
        else:
            d_reset_state = tf.matmul(d_c, candidate_h_t)
            d_h += d_reset_state * r
            d_r = d_reset_state * h
        d_u, d_a = cell.keep_gradients(d_keep, u, a)
        if d_u is None:
            d_u = tf.zeros_like(u)
        d_g = tf.concat([d_r, d_u], axis=1) * g * (1.0 - g)  # through sigmoid
        d_h += tf.matmul(d_g, gates_h_t)
        d_projected = d_projected.write(t, tf.concat([d_g, d_c], axis=1))
        if uses_attention:
            d_attention = d_attention.write(t, d_a)
        return i + 1, d_h, d_projected, d_attention

    _, _, d_projected, d_attention = tf.while_loop(
        lambda i, *_: i < steps, body,
        (tf.constant(0), tf.zeros((batch, units), dtype), _array(dtype, steps, 3 * units),
         _array(dtype, steps, 1)),
        maximum_iterations=steps)
    d_projected = tf.reshape(d_projected.stack(), (steps, batch, 3 * units))  # as above
    d_gates, d_candidate = d_projected[..., : 2 * units], d_projected[..., 2 * units:]
    if cell.reset_after:
        candidate_rows, d_candidate = previous, d_candidate * gates[..., :units]
    else:
        candidate_rows = previous * gates[..., :units]   # r * h_{t-1}
    d_gates_h = _sum_over_steps(previous, d_gates)
    d_candidate_h = _sum_over_steps(candidate_rows, d_candidate)
    result = [d_projected, d_gates_h, d_candidate_h]
    if uses_attention:
        result.append(tf.reshape(d_attention.stack(), (steps, batch, 1)))
    return result


def _sum_over_steps(left, right):
    """sum_t left[t]^T @ right[t] as one matmul over the flattened T*B rows."""
    return tf.matmul(tf.reshape(left, (-1, left.shape[-1])),
                     tf.reshape(right, (-1, right.shape[-1])), transpose_a=True)


def _unstack(x, steps):
    return tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)


def _array(dtype, steps, width):
    return tf.TensorArray(dtype, size=steps, element_shape=(None, width))
