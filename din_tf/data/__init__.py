"""Data: Amazon pipelines (DIN and DIEN protocols), readers for the formats users
hold, one's own interaction logs (LogSpec, both protocols on a log), the tf.data
input (from memory, or from row files of which each worker reads its share),
and the bundled synthetic dataset generator."""

from din_tf.data._io import DataFormatError
from din_tf.data.pipeline import (NegativeSampler, dien_iterator_batches, input_fn,
                                  make_dataset, prepare_data)
from din_tf.data.samples import Samples, concatenate
from din_tf.data.row_files import read_row_files, write_row_files
from din_tf.data.dien_files import load_dien_dir
from din_tf.data.din_files import load_din_dir
from din_tf.data.frequency import feature_frequencies
from din_tf.data.log_prepare import load_prepared_log, prepare_log
from din_tf.data.log_spec import LogSpec
from din_tf.data.logs import read_log

__all__ = [
    "DataFormatError", "NegativeSampler", "Samples", "concatenate", "dien_iterator_batches",
    "feature_frequencies", "input_fn", "load_dien_dir", "load_din_dir", "make_dataset",
    "prepare_data", "read_row_files", "write_row_files",
    "LogSpec", "load_prepared_log", "prepare_log", "read_log",
]
