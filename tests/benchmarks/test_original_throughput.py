"""benchmarks/original_throughput.py: loading the originals' Python 2 / TF1
sources, the restored TF 1.x helpers, and an end-to-end run on a stand-in
checkout with the DIN repo's layout (the real repositories are not bundled)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import original_throughput as ot


def test_py2_print_statements_become_pass_and_nothing_else_changes():
    source = textwrap.dedent("""\
        print x.get_shape().as_list()
        def f():
            print
            print(1)
            printer = 2
            print_fn(3)
          # print not a statement here
        """)
    expected = textwrap.dedent("""\
        pass
        def f():
            pass
            print(1)
            printer = 2
            print_fn(3)
          # print not a statement here
        """)
    assert ot.py3_source(source) == expected


def _write_sources(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))


def test_load_original_binds_tensorflow_to_compat_v1_for_the_file_and_its_siblings(tmp_path):
    _write_sources(tmp_path, {
        "helper.py": """\
            import tensorflow as tf
            HAS_PLACEHOLDER = hasattr(tf, "placeholder")
            """,
        "model.py": """\
            import tensorflow as tf
            from helper import HAS_PLACEHOLDER
            print "a Python 2 statement"
            TF = tf
            """,
    })
    path_before = list(sys.path)
    try:
        module = ot.load_original(str(tmp_path / "model.py"), "stand_in_model",
                                  tf.compat.v1)
    finally:
        sys.modules.pop("helper", None)  # the sibling this test wrote
    assert module.TF is tf.compat.v1
    assert module.HAS_PLACEHOLDER
    assert sys.modules["tensorflow"] is tf
    assert sys.path == path_before


def test_restored_linear_matches_the_tf1_formula():
    ot.restore_removed_tf1_helpers(tf.compat.v1)
    from tensorflow.python.ops import rnn_cell_impl

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((2, 2), np.float32)
    kernel = np.linspace(-1, 1, 5 * 4, dtype=np.float32).reshape(5, 4)
    bias = np.array([0.5, -1, 2, 0], np.float32)
    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.variable_scope("gates"):
            linear = rnn_cell_impl._Linear(
                [tf.constant(a), tf.constant(b)], 4, True,
                bias_initializer=tf.compat.v1.constant_initializer(bias),
                kernel_initializer=tf.compat.v1.constant_initializer(kernel))
        out = linear([tf.constant(a), tf.constant(b)])
        names = sorted(v.name for v in tf.compat.v1.global_variables())
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            got = session.run(out)
    assert names == ["gates/bias:0", "gates/kernel:0"]
    np.testing.assert_allclose(got, np.concatenate([a, b], 1) @ kernel + bias, rtol=1e-6)


class _CellLike:
    output_size = state_size = 1

    def zero_state(self, batch, dtype):
        return None

    def __call__(self, inputs, state):
        return inputs, state


def test_restored_cell_check_accepts_cells_and_rejects_the_rest():
    ot.restore_removed_tf1_helpers(tf.compat.v1)
    from tensorflow.python.ops import rnn_cell_impl

    assert rnn_cell_impl._like_rnncell(_CellLike()) is True
    assert rnn_cell_impl._like_rnncell(object()) is False


# The DIN repo's interface (Model(...) with train(sess, uij, lr)), Python 2
# syntax and a sibling import, built only from compat.v1 primitives. din/
# takes two evaluation-graph arguments the other folders do not; train()
# checks the starting learning rate of that folder's train.py.
STAND_IN_DIN_MODEL = """\
    import tensorflow as tf
    from Dice import squash

    class Model(object):
      def __init__(self, user_count, item_count, cate_count, cate_list{extra_args}):
        self.u = tf.placeholder(tf.int32, [None,])
        self.i = tf.placeholder(tf.int32, [None,])
        self.y = tf.placeholder(tf.float32, [None,])
        self.hist_i = tf.placeholder(tf.int32, [None, None])
        self.sl = tf.placeholder(tf.int32, [None,])
        self.lr = tf.placeholder(tf.float64, [])
        item_emb_w = tf.get_variable("item_emb_w", [item_count, 4])
        print item_emb_w.get_shape().as_list()
        h = tf.reduce_sum(tf.gather(item_emb_w, self.hist_i), 1)
        logit = squash(tf.reduce_sum(h * tf.gather(item_emb_w, self.i), 1))
        self.loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(logits=logit, labels=self.y))
        self.train_op = tf.train.GradientDescentOptimizer(
            tf.cast(self.lr, tf.float32)).minimize(self.loss)

      def train(self, sess, uij, l):
        assert l == {learning_rate}, l
        loss, _ = sess.run([self.loss, self.train_op], feed_dict={{
            self.u: uij[0], self.i: uij[1], self.y: uij[2], self.hist_i: uij[3],
            self.sl: uij[4], self.lr: l}})
        return loss
    """


def test_end_to_end_on_a_stand_in_din_repo_checkout(tmp_path):
    checkout = tmp_path / "DeepInterestNetwork"
    dice = """\
        import tensorflow as tf
        def squash(x):
          return tf.tanh(x)
        """
    _write_sources(checkout / "din", {
        "model.py": STAND_IN_DIN_MODEL.format(
            extra_args=", predict_batch_size, predict_ads_num", learning_rate=1.0),
        "Dice.py": dice,
    })
    _write_sources(checkout / "deepFM", {
        "model.py": STAND_IN_DIN_MODEL.format(extra_args="", learning_rate=0.001),
        "Dice.py": dice,
    })
    out = tmp_path / "original.json"
    cmd = [sys.executable, "-m", "benchmarks.original_throughput",
           "--models=din_repo/din,din_repo/deepfm", "--lengths=3,7", "--steps=2",
           "--warmup=1", f"--din_repo_dir={checkout}", f"--python={sys.executable}",
           f"--output={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(out.read_text())
    assert [(r["model"], r["T"], r["batch_size"], r["code"]) for r in runs] == [
        ("din_repo/din", 3, 32, "original"), ("din_repo/din", 7, 32, "original"),
        ("din_repo/deepfm", 3, 32, "original"), ("din_repo/deepfm", 7, 32, "original")]
    assert all(r["median_step_s"] > 0 for r in runs)
    assert "original din_repo/din" in done.stdout


def test_bad_arguments_name_the_flag_and_the_expectation(tmp_path):
    with pytest.raises(ValueError, match="Invalid model 'din_repo/nope'"):
        ot.check_model("din_repo/nope")
    with pytest.raises(ValueError, match="din_repo/wide_deep cannot run on CPU as coded"):
        ot.check_model("din_repo/wide_deep")
    cmd = [sys.executable, "-m", "benchmarks.original_throughput", "--models=dien_repo/DIEN",
           f"--dien_repo_dir={tmp_path}", f"--output={tmp_path / 'x.json'}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "--dien_repo_dir=" in done.stderr and "script/model.py" in done.stderr
    assert not (tmp_path / "x.json").exists()
