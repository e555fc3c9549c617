"""The originals' inputs as a schema: user, item and category ids (integer
ids, one table each) and one item + category history with per-step
negatives, under the batch keys of `din_tf.features`. It is the schema every
DIEN-repo model uses when given vocabulary sizes instead of a schema, so the
original models and a schema-built model are the same code."""

from din_tf import features as F
from din_tf.schema.features import CategoricalFeature, FeatureSchema, SequenceGroup

# The originals' table names (their TF1 variables are uid/mid/cat_embedding_var).
USER_TABLE, ITEM_TABLE, CATEGORY_TABLE = "uid", "mid", "cat"


def original_schema(n_users, n_items, n_categories, embedding_dim=18, max_length=100):
    """The DIEN repo's inputs: ids below the three vocabulary sizes."""

    def ids(name, group, size, table):
        return CategoricalFeature(name, group, lookup="integer", dtype="int64", size=size,
                                  embedding_dim=embedding_dim, table=table)

    return FeatureSchema(
        features=[ids(F.USER_ID, "user", n_users, USER_TABLE),
                  ids(F.ITEM_ID, "candidate", n_items, ITEM_TABLE),
                  ids(F.CATEGORY_ID, "candidate", n_categories, CATEGORY_TABLE)],
        sequences=[SequenceGroup(
            "history", (F.ITEM_ID, F.CATEGORY_ID), max_length=max_length,
            keys=(F.HISTORY_ITEM_IDS, F.HISTORY_CATEGORY_IDS), length_key=F.HISTORY_LENGTH,
            mask_key=F.HISTORY_MASK,
            negative_keys=(F.NEGATIVE_ITEM_IDS, F.NEGATIVE_CATEGORY_IDS))])


def din_repo_schema(n_items, n_categories, item_dim=64, category_dim=64, max_length=None):
    """The DIN repo's inputs: item and category ids with one history (no user
    id and no negatives: its models read neither)."""
    return FeatureSchema(
        features=[CategoricalFeature(F.ITEM_ID, "candidate", lookup="integer", dtype="int64",
                                     size=n_items, embedding_dim=item_dim, table="item"),
                  CategoricalFeature(F.CATEGORY_ID, "candidate", lookup="integer",
                                     dtype="int64", size=n_categories,
                                     embedding_dim=category_dim, table="category")],
        sequences=[SequenceGroup(
            "history", (F.ITEM_ID, F.CATEGORY_ID), max_length=max_length or 100,
            keys=(F.HISTORY_ITEM_IDS, F.HISTORY_CATEGORY_IDS), length_key=F.HISTORY_LENGTH,
            mask_key=F.HISTORY_MASK)])
