"""Golden parity of all 14 original models (docs/original_code.md#models,
docs/original_code.md#auxiliary-loss,
docs/original_code.md#gradient-clipping-as-tf1-computed-it): forward
outputs, exposed intermediates, loss and the gradient of every weight."""

import numpy as np
import pytest
import tensorflow as tf

from din_tf.models import get_model
from din_tf.training import global_norm_as_coded
from tests.conftest import load_golden

TOL = dict(rtol=1e-5, atol=1e-5)

DIEN_REPO_FILES = {
    "DNN": "dien_repo/DNN", "PNN": "dien_repo/PNN", "Wide": "dien_repo/Wide",
    "DIN": "dien_repo/DIN", "DIN_V2_gru_att_gru": "dien_repo/DIN-V2-gru-att-gru",
    "DIN_V2_gru_gru_att": "dien_repo/DIN-V2-gru-gru-att",
    "DIN_V2_gru_qa_attGru": "dien_repo/DIN-V2-gru-qa-attGru",
    "DIN_V2_gru_vec_attGru": "dien_repo/DIN-V2-gru-vec-attGru", "DIEN": "dien_repo/DIEN",
}
# golden output key -> our forward() key
DIEN_REPO_OUTPUTS = {
    "y_hat": "y_hat", "item_eb": "item_eb", "item_his_eb": "history_eb",
    "item_his_eb_sum": "history_sum", "uid_batch_embedded": "uid_embedding",
    "rnn1_outputs": "rnn1_outputs", "rnn2_outputs": "rnn2_outputs",
    "rnn2_final_state": "rnn2_final_state", "fcn_attention1_output": "attention_output",
    "fcn_attention1_alphas": "attention_weights", "aux_loss": "aux_loss",
    "noclk_item_his_eb": "negative_eb",
}


def _check_gradients(model, grads, z, prefix="grad/"):
    names = {id(v): n for n, v in model.original_variable_map().items()}
    assert len(grads) == len(model.trainable_variables)
    for grad, variable in zip(grads, model.trainable_variables):
        name = names[id(variable)]
        np.testing.assert_allclose(np.asarray(tf.convert_to_tensor(grad)), z[prefix + name],
                                   err_msg=name, **TOL)


@pytest.mark.parametrize("tag", sorted(DIEN_REPO_FILES))
def test_dien_repo_model(tag):
    z = load_golden(f"dien_model_{tag}")
    weights = {k[2:]: v for k, v in z.items() if k.startswith("w/")}
    # Vocabulary sizes: the rows of the file's embedding tables.
    model = get_model(DIEN_REPO_FILES[tag], n_users=weights["uid_embedding_var"].shape[0],
                      n_items=weights["mid_embedding_var"].shape[0],
                      n_categories=weights["cat_embedding_var"].shape[0])
    assert model.load_original_weights(weights) == []
    assert set(model.original_variable_map()) == set(weights)
    features = {
        "user_id": z["in/uids"], "item_id": z["in/mids"], "category_id": z["in/cats"],
        "history_item_ids": z["in/mid_his"], "history_category_ids": z["in/cat_his"],
        "history_mask": z["in/mask"],
    }
    if "in/noclk_mids" in z:
        features["negative_item_ids"] = z["in/noclk_mids"]
        features["negative_category_ids"] = z["in/noclk_cats"]
    labels = z["in/target"][:, 0]
    with tf.GradientTape() as tape:
        outputs, losses = model.compute_losses(features, labels, training=True)
    grads = tape.gradient(losses["loss"], model.trainable_variables)

    np.testing.assert_allclose(losses["loss"], z["out/loss"], **TOL)
    checked = set()
    for key, ours in DIEN_REPO_OUTPUTS.items():
        if f"out/{key}" in z:
            np.testing.assert_allclose(outputs[ours], z[f"out/{key}"], err_msg=key, **TOL)
            checked.add(key)
    assert checked >= {"y_hat", "item_eb", "item_his_eb", "item_his_eb_sum",
                       "uid_batch_embedded"}  # the outputs every DIEN-repo model has
    accuracy = np.mean(np.round(outputs["y_hat"]) == z["in/target"])
    np.testing.assert_allclose(accuracy, z["out/accuracy"])
    # Serving path: the click probability alone, same lengths given as ints.
    served = dict(features)
    served.pop("history_mask")
    served["history_length"] = z["in/sl"]
    np.testing.assert_allclose(model(served), z["out/y_hat"][:, 0], **TOL)
    _check_gradients(model, grads, z)


@pytest.mark.parametrize("kind", ["base", "pnn", "deepfm", "din", "din_dice"])
def test_din_repo_model(kind):
    z = load_golden(f"dinrepo_model_{kind}")
    weights = {k[2:]: v for k, v in z.items() if k.startswith("w/")}
    # Vocabulary sizes: the rows of the file's embedding tables.
    model = get_model(f"din_repo/{kind}", n_items=weights["item_emb_w"].shape[0],
                      n_categories=weights["cate_emb_w"].shape[0])
    assert model.load_original_weights(weights) == []
    # The original also stores an unused user table and the test path's BN.
    assert set(weights) - set(model.original_variable_map()) <= {
        "user_emb_w", "hist_bn/gamma", "hist_bn/beta", "hist_bn/moving_mean",
        "hist_bn/moving_variance"}
    categories = z["in/cate_list"]

    def features(items):
        return {"item_id": items, "category_id": categories[items],
                "history_item_ids": z["in/hist_i"],
                "history_category_ids": categories[z["in/hist_i"]],
                "history_length": z["in/sl"]}

    model.compile()
    with tf.GradientTape() as tape:
        outputs, losses = model.compute_losses(features(z["in/i"]), z["in/y"], training=True)
    grads = tape.gradient(losses["loss"], model.trainable_variables)
    negative = model.forward(features(z["in/j"]))

    np.testing.assert_allclose(outputs["logits"], z["out/logits"], **TOL)
    np.testing.assert_allclose(losses["loss"], z["out/loss"], **TOL)
    np.testing.assert_allclose(np.stack([outputs["probability"], negative["probability"]], -1),
                               z["out/p_and_n"], **TOL)
    mf_auc = np.mean(np.asarray(outputs["logits"]) > np.asarray(negative["logits"]))
    np.testing.assert_allclose(mf_auc, z["out/mf_auc"])
    if "out/attention_i" in z:
        np.testing.assert_allclose(outputs["attention_output"], z["out/attention_i"][:, 0], **TOL)
        np.testing.assert_allclose(negative["attention_output"], z["out/attention_j"][:, 0],
                                   **TOL)
    _check_gradients(model, grads, z)
    # Clipping as coded: the norm squares un-merged embedding slices.
    assert any(isinstance(g, tf.IndexedSlices) for g in grads)
    np.testing.assert_allclose(global_norm_as_coded(grads), z["out/grad_global_norm"], **TOL)
    clipped, _ = model.process_gradients(grads, model.trainable_variables)
    _check_gradients(model, clipped, z, prefix="grad_clipped/")
