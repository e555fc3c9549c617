"""Training curves: the runner's `curves.png` and the notebook's inline plot.

`curves_figure(history)` draws a run's per-epoch metrics (the rows of
`metrics.json`) as one matplotlib Figure with a loss panel and an AUC panel:
train and test series as present in the history, integer epoch ticks, axis
labels, titles, legends, and markers so a one-epoch run shows labelled
points. `write_curves` saves it as a PNG, atomically.

matplotlib is an optional dependency (`pip install "din_tf[plots]"`; the
`dev` extra includes it). Figures use matplotlib's object-oriented API on the
Agg canvas: no pyplot global state, no display needed. Without matplotlib,
`write_curves` logs one line saying the PNG was not drawn and how to get it,
and training carries on.
"""

import functools
import io
import math
import os

from absl import logging

from din_tf.experiments import atomic_files

INSTALL_HINT = 'pip install "din_tf[plots]"'

# Loss components: `<name>` is the training value, `test_<name>` the test one.
# A component whose values are all zero (reg_loss without regularisation) is
# left out.
LOSS_COMPONENTS = ("loss", "ctr_loss", "aux_loss", "reg_loss")
# history key -> legend label, in drawing order.
AUC_SERIES = {
    "auc": "train AUC",
    "test_auc": "test AUC",
    "test_gauc": "test GAUC",
    "test_dien_calc_auc": "test DIEN-repo calc_auc",
    "test_dinrepo_gauc": "test DIN-repo GAUC",
}
LOSS_TITLE, AUC_TITLE = "Loss by epoch", "AUC by epoch"
DEFAULT_TITLE = "Training curves"
MAX_LABELLED_EPOCHS = 25  # up to this many epochs every epoch gets a tick


def history_rows(keras_history):
    """The runner's history rows (`[{"epoch": 1, "loss": ..., "test_auc": ...}]`)
    from what `model.fit` returns (a `keras.callbacks.History`, or its
    `.history` dict): validation metrics (`val_*`) become `test_*`."""
    logs = getattr(keras_history, "history", keras_history)
    count = max((len(values) for values in logs.values()), default=0)
    epochs = getattr(keras_history, "epoch", None) or range(count)
    rows = []
    for i, epoch in enumerate(epochs):
        row = {"epoch": int(epoch) + 1}
        for key, values in logs.items():
            name = "test_" + key[len("val_"):] if key.startswith("val_") else key
            row[name] = float(values[i])
        rows.append(row)
    return rows


def _values(history, key):
    """The key's value at each epoch (NaN where an epoch lacks it), or None
    when no epoch has a finite value."""
    values = [math.nan if row.get(key) is None else float(row[key]) for row in history]
    return values if any(math.isfinite(v) for v in values) else None


def _loss_series(history):
    series = []
    for component in LOSS_COMPONENTS:
        for split, key in (("train", component), ("test", "test_" + component)):
            values = _values(history, key)
            if values is not None and any(v != 0.0 for v in values if math.isfinite(v)):
                series.append((key, f"{split} {component}", values))
    return series


def _auc_series(history):
    return [(key, label, values) for key, label in AUC_SERIES.items()
            if (values := _values(history, key)) is not None]


@functools.cache
def _figure_class():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class CurvesFigure(Figure):
        """A Figure on its own Agg canvas that Jupyter shows inline as a PNG
        (IPython's `_repr_png_` protocol), with or without pyplot."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            FigureCanvasAgg(self)

        def _repr_png_(self):
            return figure_png(self)

    return CurvesFigure


def _draw_panel(ax, epochs, series, title, ylabel):
    from matplotlib.ticker import MaxNLocator

    markers = "osD^vP*X"
    for k, (key, label, values) in enumerate(series):
        # A component's train and test series share a colour; test is dashed.
        # Markers (up to MAX_LABELLED_EPOCHS epochs) make one-epoch runs
        # visible; each series' are smaller than the previous one's, so equal
        # values (GAUC and DIN-repo GAUC on the DIEN protocol) stay visible.
        base = key[len("test_"):] if key.startswith("test_") else key
        few = len(epochs) <= MAX_LABELLED_EPOCHS
        ax.plot(epochs, values, label=label, marker=markers[k % len(markers)] if few else None,
                markersize=max(9.0 - k, 4.0),
                linestyle="--" if key.startswith("test_") else "-",
                color=f"C{LOSS_COMPONENTS.index(base)}" if base in LOSS_COMPONENTS else None)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    if len(epochs) <= MAX_LABELLED_EPOCHS:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if series:  # below the panel, clear of the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize="small",
                  frameon=False)
    else:
        ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center")


def curves_figure(history, title=None):
    """The training curves of one run as a matplotlib Figure (not registered
    with pyplot; shown inline when it is a notebook cell's value).

    Args:
      history: per-epoch dicts as the runner writes them to metrics.json
        (`epoch`, training losses `loss`/`ctr_loss`/`aux_loss`/`reg_loss`,
        `test_*` losses and AUCs, optionally a training `auc`);
        `history_rows` makes them from `model.fit`'s History.
      title: the figure's title (default "Training curves"); the number of
        epochs is appended.

    Returns:
      The Figure: a loss panel and an AUC panel, x axis the epoch.

    Raises:
      ImportError: without matplotlib (`pip install "din_tf[plots]"`).
      ValueError: for an empty history.
    """
    if not history:
        raise ValueError("Invalid history: expected at least one epoch's metrics, received none.")
    history = sorted(history, key=lambda row: row["epoch"])
    epochs = [int(row["epoch"]) for row in history]
    figure = _figure_class()(figsize=(11, 5), layout="constrained")
    loss_ax, auc_ax = figure.subplots(1, 2)
    _draw_panel(loss_ax, epochs, _loss_series(history), LOSS_TITLE, "loss")
    _draw_panel(auc_ax, epochs, _auc_series(history), AUC_TITLE, "AUC")
    count = f"{len(epochs)} epoch" + ("" if len(epochs) == 1 else "s")
    figure.suptitle(f"{title or DEFAULT_TITLE} ({count})")
    return figure


def figure_png(figure, dpi=100):
    """The figure rendered as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


_REPORTED_MISSING = set()


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_curves(path, history, title=None):
    """Writes `curves_figure(history, title)` to `path` as a PNG, atomically.

    Returns True when written. Without matplotlib returns False and logs,
    once per path, one line saying so and how to get the plot."""
    if not matplotlib_available():
        if path not in _REPORTED_MISSING:
            _REPORTED_MISSING.add(path)
            logging.warning("%s not drawn: matplotlib is not installed; to get it, %s "
                            "(the same numbers are in metrics.json and metrics.csv)",
                            os.path.basename(path), INSTALL_HINT)
        return False
    atomic_files.write_bytes(path, figure_png(curves_figure(history, title)))
    return True
