"""Every named experiment builds its model (the runner's first step), and the
paper presets differ from the coded models only by the preset."""

import pytest

from din_tf import models
from din_tf.experiments.registry import EXPERIMENTS, get_experiment

SIZES = dict(n_users=7, n_items=20, n_categories=5)


@pytest.mark.parametrize("name", sorted(n for n in EXPERIMENTS if n.endswith("@dien")))
def test_every_experiment_builds_its_model(name):
    cfg = get_experiment(name)
    model = models.get_model(cfg.model.name, **SIZES, **cfg.model.options)
    assert model.trainable_variables


@pytest.mark.parametrize("label,gru_type,aux", [("AIGRU", "aigru", False),
                                                ("AGRU", "agru", False),
                                                ("AUGRU", "augru", False),
                                                ("DIEN", "augru", True)])
def test_paper_experiments_are_the_ablations_with_the_paper_preset(label, gru_type, aux):
    cfg = get_experiment(f"paper/{label}@din")
    model = models.get_model(cfg.model.name, **SIZES, **cfg.model.options)
    assert (model.gru_type, model.use_aux_loss) == (gru_type, aux)
    assert model.options["augru_gate"] == "paper" and model.options["mask_history_sum"]


def test_options_that_contradict_the_original_name_are_refused():
    with pytest.raises(ValueError, match=r"\['gru_type'\] are fixed by this original model"):
        models.get_model("dien_repo/DIEN", **SIZES, gru_type="agru")
