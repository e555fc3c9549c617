r"""Turns public raw data into training files with the DIN or DIEN protocol.

  python -m din_tf.data.prepare --protocol=dien \
      --reviews=reviews_Books_5.json.gz --meta=meta_Books.json.gz --output_dir=data/books_dien

Inputs (one of): `--reviews` + `--meta` (Amazon 2014 raw files), `--five_core`
+ `--five_core_attributes` (sequence format), `--movielens_dir`.
Output: the DIEN files (`local_*_splitByUser`, `*_voc.pkl`, `reviews-info`,
`item-info`) or the DIN files (`train_set.csv`, `test_set.csv`, `cate_list.csv`,
...), written all-or-nothing.

Your own interaction log instead: `--log_spec=spec.json --schema=schema.json`
(`din_tf.data.log_spec.LogSpec`, `din_tf.schema.FeatureSchema`; relative paths in
the spec resolve against `--data_dir`, by default the spec's folder) writes
`schema.json`, `log_spec.json`, `train.npz`, `test.npz`, `summary.json`
(`din_tf.data.log_prepare`).

  python -m din_tf.data.prepare --protocol=dien --log_spec=log_spec.json \
      --schema=schema.json --data_dir=~/data/ml-100k --output_dir=data/ml100k_dien
"""

from absl import app, flags, logging

from din_tf import _command_line
from din_tf.data import amazon, din_protocol, dien_protocol, five_core, movielens
from din_tf.data.log_prepare import prepare_log
from din_tf.data.log_spec import LogSpec
from din_tf.data.logs import MissingDependencyError
from din_tf.schema.features import FeatureSchema

FLAGS = flags.FLAGS


def load_inputs(protocol, reviews=None, meta=None, five_core_path=None, attributes=None,
                movielens_dir=None, skip_malformed=False, min_rating=None):
    """`(Reviews, {item: category})` with the protocol's category rule."""
    given = [reviews is not None or meta is not None, five_core_path is not None,
             movielens_dir is not None]
    if sum(given) != 1:
        raise ValueError("prepare: expected exactly one input: --reviews/--meta, --five_core/"
                         "--five_core_attributes or --movielens_dir")
    if given[0]:
        if reviews is None or meta is None:
            raise ValueError("prepare: --reviews and --meta must be given together")
        revs, meta_map = amazon.read_amazon(reviews, meta, skip_malformed,
                                            require_rating=protocol == "dien")
        amazon.check_meta_coverage(revs, meta_map, reviews, meta)
        rule = amazon.din_category if protocol == "din" else amazon.dien_category
        return revs, amazon.item_categories(meta_map, rule)
    if given[1]:
        if attributes is None:
            raise ValueError("prepare: --five_core needs --five_core_attributes")
        return five_core.read_five_core(five_core_path, attributes, skip_malformed)
    return movielens.read_movielens(movielens_dir, skip_malformed=skip_malformed,
                                    min_rating=min_rating)


def run(protocol, output_dir, seed=None, missing_category="error", din_pickle=False, **inputs):
    reviews, categories = load_inputs(protocol, **inputs)
    logging.info("read %d interactions, %d items with a category", len(reviews), len(categories))
    logging.info("building the %s protocol's samples", protocol)
    if protocol == "din":
        dataset = din_protocol.build(reviews, categories,
                                     din_protocol.DEFAULT_SEED if seed is None else seed,
                                     missing_category)
        logging.info("writing %s", output_dir)
        din_protocol.write(dataset, output_dir, write_pickle=din_pickle)
        return dataset.counts
    files = dien_protocol.build(reviews, categories, 0 if seed is None else seed)
    logging.info("writing %s", output_dir)
    dien_protocol.write(files, output_dir)
    return files.counts


def run_log(protocol, output_dir, log_spec, schema, data_dir=None, seed=None, **inputs):
    """Prepares one's own log (`--log_spec` + `--schema`); `inputs` are the
    other inputs' flags, which must be unset (None)."""
    given = sorted(f"--{name}" for name, value in inputs.items() if value is not None)
    if given:
        raise ValueError(f"prepare: --log_spec takes the place of the other inputs and their "
                         f"options; drop "
                         f"{', '.join(given)} (or drop --log_spec to prepare those files)")
    if log_spec is None or schema is None:
        raise ValueError("prepare: --log_spec and --schema must be given together (the log "
                         "spec says what the log's columns are, the schema which features "
                         "to build)")
    spec = LogSpec.load(log_spec, data_dir=data_dir)
    return prepare_log(spec, FeatureSchema.load(schema), protocol, output_dir, seed)


def main(argv):
    del argv
    if FLAGS.log_spec is not None or FLAGS.schema is not None:
        summary = run_log(FLAGS.protocol, FLAGS.output_dir, FLAGS.log_spec, FLAGS.schema,
                          FLAGS.data_dir, FLAGS.seed, reviews=FLAGS.reviews, meta=FLAGS.meta,
                          five_core=FLAGS.five_core,
                          five_core_attributes=FLAGS.five_core_attributes,
                          movielens_dir=FLAGS.movielens_dir, min_rating=FLAGS.min_rating,
                          skip_malformed=FLAGS.skip_malformed or None,
                          din_pickle=FLAGS.din_pickle or None,
                          missing_category=None if FLAGS.missing_category == "error"
                          else FLAGS.missing_category)
        print(f"{FLAGS.protocol} protocol -> {FLAGS.output_dir}: {summary}")
        return
    if FLAGS.data_dir is not None:
        raise ValueError("prepare: --data_dir applies to --log_spec only")
    counts = run(FLAGS.protocol, FLAGS.output_dir, FLAGS.seed, FLAGS.missing_category,
                 FLAGS.din_pickle, reviews=FLAGS.reviews, meta=FLAGS.meta,
                 five_core_path=FLAGS.five_core, attributes=FLAGS.five_core_attributes,
                 movielens_dir=FLAGS.movielens_dir, skip_malformed=FLAGS.skip_malformed,
                 min_rating=FLAGS.min_rating)
    print(f"{FLAGS.protocol} protocol -> {FLAGS.output_dir}: {counts}")


def _define_flags():
    # Defined only when run as a command, so importing `run` from another absl
    # program (the experiment runner) does not clash with its flags.
    flags.DEFINE_enum("protocol", None, ["din", "dien"], "Which paper's data protocol.")
    flags.DEFINE_string("reviews", None, "Amazon reviews_<Category>_5.json[.gz].")
    flags.DEFINE_string("meta", None, "Amazon meta_<Category>.json[.gz].")
    flags.DEFINE_string("five_core", None, "5-core sequence file (one user per line).")
    flags.DEFINE_string("five_core_attributes", None, "Its <name>_item2attributes.json.")
    flags.DEFINE_string("movielens_dir", None, "MovieLens 100K / 1M / 20M folder.")
    flags.DEFINE_string("log_spec", None, "Your own interaction log: a LogSpec JSON file "
                                          "(din_tf.data.logs); needs --schema.")
    flags.DEFINE_string("schema", None, "With --log_spec: the FeatureSchema JSON file.")
    flags.DEFINE_string("data_dir", None, "With --log_spec: resolve the spec's relative paths "
                                          "here (default: the spec file's folder).")
    flags.DEFINE_float("min_rating", None, "MovieLens: keep ratings >= this only.")
    flags.DEFINE_string("output_dir", None, "Where to write the protocol's files.")
    flags.DEFINE_integer("seed", None, "Random seed (default: 1234 for DIN as the original, 0 for "
                                       "DIEN, whose original is unseeded).")
    flags.DEFINE_bool("skip_malformed", False, "Skip malformed input lines (counted in a warning) "
                                               "instead of failing.")
    flags.DEFINE_enum("missing_category", "error", ["error", "drop"],
                      "DIN: what to do with reviews of items that have no category.")
    flags.DEFINE_bool("din_pickle", False, "DIN: also write the original's dataset.pkl layout.")
    flags.mark_flags_as_required(["protocol", "output_dir"])
    flags.DEFINE_bool(_command_line.VERBOSE_FLAG, False, _command_line.VERBOSE_HELP)


# Bad input (flags, unreadable or malformed files) is one line and exit code 2;
# DataFormatError is a ValueError naming file and line, OSError names the path.
# A missing optional package (pyarrow for Parquet logs) names the extra to install.
main_reporting_errors = _command_line.report_errors(
    main, (ValueError, OSError, MissingDependencyError))


if __name__ == "__main__":
    _define_flags()
    app.run(main_reporting_errors, flags_parser=_command_line.parse_flags)
