"""Feature schemas: declare a model's inputs, fit them on training data, and
turn raw values into embedding rows (`FeatureEncoder`)."""

from din_tf.schema.encoder import FeatureEncoder
from din_tf.schema.features import (
    CategoricalFeature,
    FeatureSchema,
    NumericFeature,
    SchemaError,
    SequenceGroup,
)
from din_tf.schema.original import original_schema
from din_tf.schema.vocabulary import fit_vocabularies, load_vocabularies, save_vocabularies

__all__ = ["CategoricalFeature", "FeatureEncoder", "FeatureSchema", "NumericFeature",
           "SchemaError", "SequenceGroup", "fit_vocabularies", "load_vocabularies",
           "original_schema", "save_vocabularies"]
