"""Regenerates the bundled default dataset in data/ (raw Amazon 2014 format).

  python data/generate_default.py [--output_dir=data] [--report]

Deterministic: the same code and seed give byte-identical .json.gz files.
`--report` also runs the DIN and DIEN protocols on the result and prints the
hand-made proxy AUCs described in data/README.md.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

from din_tf.data import amazon, dien_files, dien_protocol, din_protocol, synthetic  # noqa: E402

flags.DEFINE_string("output_dir", os.path.dirname(os.path.abspath(__file__)),
                    "Where to write reviews_Synthetic_5.json.gz and meta_Synthetic.json.gz.")
flags.DEFINE_bool("report", False, "Run both protocols and print proxy AUCs.")
FLAGS = flags.FLAGS


def report(reviews_path, meta_path, config):
    reviews, meta = amazon.read_amazon(reviews_path, meta_path)
    k = config.items_per_category
    position = {synthetic.item_key(i): (i % k + 0.5) / k
                for i in range(config.n_categories * k)}
    din = din_protocol.build(reviews, amazon.item_categories(meta, amazon.din_category))
    print("DIN protocol:", din.counts, "train rows", len(din.train_user))
    print("  proxy AUCs (test):", synthetic.proxy_report(
        din.test_samples(), np.array([position[key] for key in din.item_keys])))
    files = dien_protocol.build(reviews, amazon.item_categories(meta, amazon.dien_category))
    print("DIEN protocol:", files.counts)
    with tempfile.TemporaryDirectory() as tmp:
        dien_protocol.write(files, tmp)
        data = dien_files.load_dien_dir(tmp)
    key_of = {v: key for key, v in data.mid_voc.items()}
    pos = np.array([position.get(key_of.get(i, ""), 0.0) for i in range(data.n_items)])
    print("  proxy AUCs (test):", synthetic.proxy_report(data.test, pos))


def main(argv):
    del argv
    config = synthetic.SyntheticConfig()
    data = synthetic.generate(config)
    paths = synthetic.write_raw(data, FLAGS.output_dir)
    for path in paths:
        print(f"{path}: {os.path.getsize(path)} bytes")
    if FLAGS.report:
        report(*paths, config)


if __name__ == "__main__":
    app.run(main)
