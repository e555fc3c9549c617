"""notebooks/quickstart.ipynb: every code cell runs (few training steps)."""

import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_code_cells_run(monkeypatch):
    monkeypatch.setenv("QUICKSTART_STEPS", "3")
    monkeypatch.setenv("DIN_TF_REPO", REPO)
    with open(os.path.join(REPO, "notebooks", "quickstart.ipynb"), encoding="utf-8") as f:
        notebook = json.load(f)
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 5
    namespace = {"__name__": "__quickstart__"}
    for cell in cells:
        exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)
    # The last cell served one row through the exported signature.
    assert namespace["served"] is not None
    probability = namespace["served"](**namespace["row"])["probability"].numpy()
    assert probability.shape == (1,) and 0.0 < float(probability[0]) < 1.0
    assert set(namespace["features"]) >= {"user_id", "history_item_ids", "history_length"}
    # The training curves, inline: the runner's curves.png figure of DIEN's fit.
    fig = namespace["fig"]
    loss_ax, auc_ax = fig.axes
    assert (loss_ax.get_title(), auc_ax.get_title()) == ("Loss by epoch", "AUC by epoch")
    assert list(auc_ax.get_xticks()) == list(range(1, namespace["EPOCHS"] + 1))
    assert {"train loss", "test loss", "train aux_loss"} <= {
        t.get_text() for t in loss_ax.get_legend().get_texts()}
    assert [t.get_text() for t in auc_ax.get_legend().get_texts()] == ["train AUC", "test AUC"]
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
