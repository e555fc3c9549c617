"""Preprocessing and tf.data throughput (a benchmark, not a test).

  python -m benchmarks.input_pipeline [--num_reviews=1000000] [--batches=400] \
      [--output=benchmarks/results/input_pipeline.json]

1. Writes a raw Amazon-format review file of `--num_reviews` lines (gzip, with
   review text like the real dumps) and its meta file, then times reading
   them and running both protocols (rows/s = review lines per second).
2. Times `make_dataset` in training configuration (B=128, maxlen=T=100, K=5
   sampled negatives, shuffle) on histories of 100+ steps, and compares with
   the original DIEN's training speed at B=128, T=100 (359 ex/s, 444 ex/s with
   oneDNN: docs/original_code.md#throughput-of-the-original-code); the input
   pipeline must be >= 10x faster.
"""

import gzip
import json
import os
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS

# The original DIEN at B=128, T=100, the best of the two tables of
# docs/original_code.md#throughput-of-the-original-code.
DIEN_EXAMPLES_PER_S = 444.0
RECORDS = []  # one dict per timed stage, written to --output


def write_files(directory, n, seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 9, 1), max(n // 20, 10)
    users = np.sort(rng.integers(n_users, size=n))
    items = (rng.zipf(1.3, size=n) + rng.integers(n_items, size=n)) % n_items
    times = 1300000000 + rng.integers(0, 10 ** 8, size=n)
    text = "This is a review text of ordinary length. " * 5
    reviews = os.path.join(directory, "reviews_Bench_5.json.gz")
    with gzip.open(reviews, "wt", compresslevel=1, encoding="utf-8") as f:
        for u, i, t in zip(users.tolist(), items.tolist(), times.tolist()):
            f.write(json.dumps({"reviewerID": f"A{u:012d}", "asin": f"B{i:09d}",
                                "reviewerName": "Jane", "helpful": [0, 0], "reviewText": text,
                                "overall": 5.0, "summary": "Fine", "unixReviewTime": t,
                                "reviewTime": "01 1, 2014"}) + "\n")
    meta = os.path.join(directory, "meta_Bench.json.gz")
    with gzip.open(meta, "wt", compresslevel=1, encoding="utf-8") as f:
        for i in range(n_items):
            f.write(repr({"asin": f"B{i:09d}", "title": "A product", "price": 9.99,
                          "categories": [["Bench", f"Dept {i % 7}", f"Cat {i % 301}"]],
                          "salesRank": {"Bench": i}}) + "\n")
    return reviews, meta


def timed(label, n, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<38s} {seconds:8.2f} s   {n / seconds:12,.0f} rows/s", flush=True)
    RECORDS.append({"stage": label, "rows": n, "seconds": seconds, "rows_per_s": n / seconds})
    return out


def preprocessing(n, seed):
    from din_tf.data import amazon, din_protocol, dien_protocol
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        reviews_path, meta_path = write_files(tmp, n, seed)
        print(f"generated {n:,} reviews ({os.path.getsize(reviews_path) / 1e6:.1f} MB gz) in "
              f"{time.perf_counter() - start:.1f} s")
        reviews = timed("read reviews (JSON)", n, lambda: amazon.read_reviews(reviews_path))
        meta = timed("read meta (literal_eval; meta lines)", max(n // 20, 10),
                     lambda: amazon.read_meta(meta_path, set(reviews.item)))
        din = timed("DIN protocol build", n, lambda: din_protocol.build(
            reviews, amazon.item_categories(meta, amazon.din_category)))
        timed("DIN protocol write (CSV)", n,
              lambda: din_protocol.write(din, os.path.join(tmp, "din")))
        dien = timed("DIEN protocol build", n, lambda: dien_protocol.build(
            reviews, amazon.item_categories(meta, amazon.dien_category)))
        timed("DIEN protocol write", n, lambda: dien_protocol.write(dien, os.path.join(tmp, "dien")))


def input_pipeline(num_batches, seed):
    from din_tf.data import NegativeSampler, Samples, make_dataset
    rng = np.random.default_rng(seed)
    n, n_items = 20000, 300000
    lengths = rng.integers(80, 160, n)
    steps = rng.integers(1, n_items, int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    samples = Samples(user_id=rng.integers(0, 500000, n), item_id=rng.integers(1, n_items, n),
                      category_id=rng.integers(1, 1600, n), label=rng.integers(0, 2, n),
                      history_start=starts, history_length=lengths, steps_item_id=steps,
                      steps_category_id=steps % 1600)
    sampler = NegativeSampler(pool=rng.zipf(1.2, 1_000_000) % n_items,
                              item_category=np.arange(n_items) % 1600, num_negatives=5)
    ds = make_dataset(samples, 128, maxlen=100, negatives=sampler, shuffle=True, seed=seed,
                      with_mask=True, repeat=True)
    it = iter(ds)
    for _ in range(20):
        next(it)
    start = time.perf_counter()
    for _ in range(num_batches):
        feats, _ = next(it)
    seconds = time.perf_counter() - start
    rate = num_batches / seconds
    print(f"tf.data (B=128, T=100, K=5, shuffle): {rate:,.1f} batches/s = {rate * 128:,.0f} "
          f"examples/s; original DIEN trains at {DIEN_EXAMPLES_PER_S:.0f} ex/s -> "
          f"{rate * 128 / DIEN_EXAMPLES_PER_S:,.0f}x (need >= 10x)")
    assert feats["history_item_ids"].shape[1] == 100
    RECORDS.append({"stage": "tf.data B=128 T=100 K=5 shuffle", "batches": num_batches,
                    "seconds": seconds, "batches_per_s": rate, "examples_per_s": rate * 128})


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_integer("num_reviews", 1_000_000, "Review lines in the generated file.")
    flags.DEFINE_integer("batches", 400, "tf.data batches to time (after 20 warm-up batches).")
    flags.DEFINE_integer("seed", 0, "Generator seed.")
    flags.DEFINE_string("output", "benchmarks/results/input_pipeline.json", "JSON output.")


def main(argv):
    del argv
    preprocessing(FLAGS.num_reviews, FLAGS.seed)
    input_pipeline(FLAGS.batches, FLAGS.seed)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump({"num_reviews": FLAGS.num_reviews, "stages": RECORDS}, f, indent=1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
