"""Training curves (din_tf.experiments.plot): the Figure's content, the PNG,
and the run without matplotlib."""

import logging
import os
import struct
import sys

import numpy as np
import pytest

from din_tf.experiments import plot

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history(epochs):
    rng = np.random.default_rng(epochs)
    return [{"epoch": e, "loss": 1.0 / e, "ctr_loss": 0.6 / e, "aux_loss": 0.4 / e,
             "reg_loss": 0.0, "learning_rate": 0.001, "auc": 0.6 + 0.01 * e,
             "test_loss": 1.1 / e, "test_ctr_loss": 0.7 / e, "test_aux_loss": 0.4 / e,
             "test_reg_loss": 0.0, "test_auc": float(rng.uniform(0.5, 0.7)),
             "test_gauc": float(rng.uniform(0.5, 0.7))} for e in range(1, epochs + 1)]


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _line(ax, label):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def test_figure_has_titles_labels_epoch_ticks_and_legends():
    history = _history(3)
    fig = plot.curves_figure(history, title="dien_repo/DIEN@dien")
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    assert fig.get_suptitle() == "dien_repo/DIEN@dien (3 epochs)"
    loss_ax, auc_ax = fig.axes
    assert (loss_ax.get_title(), auc_ax.get_title()) == ("Loss by epoch", "AUC by epoch")
    assert (loss_ax.get_xlabel(), auc_ax.get_xlabel()) == ("epoch", "epoch")
    assert (loss_ax.get_ylabel(), auc_ax.get_ylabel()) == ("loss", "AUC")
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1, 2, 3]
    # All-zero reg_loss is left out; the learning rate is not a curve.
    assert _legend(loss_ax) == ["train loss", "test loss", "train ctr_loss", "test ctr_loss",
                                "train aux_loss", "test aux_loss"]
    assert _legend(auc_ax) == ["train AUC", "test AUC", "test GAUC"]
    np.testing.assert_allclose(_line(auc_ax, "test AUC").get_ydata(),
                               [h["test_auc"] for h in history])
    np.testing.assert_allclose(_line(loss_ax, "test loss").get_xdata(), [1, 2, 3])
    assert _line(loss_ax, "test loss").get_linestyle() == "--"
    assert _line(loss_ax, "train loss").get_linestyle() == "-"


def test_one_epoch_run_shows_labelled_points():
    fig = plot.curves_figure(_history(1))
    assert fig.get_suptitle() == "Training curves (1 epoch)"
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1]
        low, high = ax.get_xlim()
        assert low < 1 < high
        for line in ax.get_lines():
            assert line.get_marker() not in (None, "None", "")
            assert line.get_markersize() >= 4


def test_many_epochs_get_integer_ticks_and_missing_values_are_gaps():
    history = _history(40)
    del history[5]["test_gauc"]
    fig = plot.curves_figure(list(reversed(history)))  # drawn in epoch order
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert len(ticks) < 40 and np.all(ticks == np.round(ticks))
    gauc = _line(fig.axes[1], "test GAUC")
    np.testing.assert_array_equal(gauc.get_xdata(), np.arange(1, 41))
    assert np.isnan(gauc.get_ydata()[5]) and np.isfinite(np.delete(gauc.get_ydata(), 5)).all()


def test_panel_without_metrics_says_so():
    fig = plot.curves_figure([{"epoch": 1, "loss": 0.5}])
    loss_ax, auc_ax = fig.axes
    assert _legend(loss_ax) == ["train loss"]
    assert auc_ax.get_legend() is None
    assert [t.get_text() for t in auc_ax.texts] == ["not recorded"]


def test_empty_history_is_an_error():
    with pytest.raises(ValueError, match="expected at least one epoch"):
        plot.curves_figure([])


def test_write_curves_writes_a_png_atomically(tmp_path):
    path = str(tmp_path / "curves.png")
    assert plot.write_curves(path, _history(2)) is True
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    fig = plot.curves_figure(_history(2))
    assert (width, height) == tuple(round(v * 100) for v in fig.get_size_inches())
    assert os.listdir(tmp_path) == ["curves.png"]  # no temporary file left


def test_figure_shows_inline_in_notebooks():
    """IPython displays a cell's value through `_repr_png_`."""
    assert plot.curves_figure(_history(2))._repr_png_()[:8] == PNG_MAGIC


def test_history_rows_from_keras_fit():
    class History:  # what model.fit returns
        epoch = [0, 1]
        history = {"loss": [0.7, 0.6], "auc": [0.55, 0.6], "val_loss": [0.8, 0.75],
                   "val_auc": [0.5, 0.52]}

    expected = [{"epoch": 1, "loss": 0.7, "auc": 0.55, "test_loss": 0.8, "test_auc": 0.5},
                {"epoch": 2, "loss": 0.6, "auc": 0.6, "test_loss": 0.75, "test_auc": 0.52}]
    assert plot.history_rows(History()) == expected
    assert plot.history_rows(History.history) == expected


def test_without_matplotlib_write_curves_says_how_to_get_the_plot(tmp_path, monkeypatch,
                                                                   caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    path = str(tmp_path / "curves.png")
    with caplog.at_level(logging.WARNING):
        assert plot.write_curves(path, _history(1)) is False
        assert plot.write_curves(path, _history(2)) is False
    assert not os.path.exists(path)
    lines = [r.getMessage() for r in caplog.records if "curves.png" in r.getMessage()]
    assert lines == ['curves.png not drawn: matplotlib is not installed; to get it, '
                     'pip install "din_tf[plots]" (the same numbers are in metrics.json '
                     'and metrics.csv)']
