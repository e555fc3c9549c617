"""Offline evaluation of a model's test predictions with every metric the
papers and repos report."""

import numpy as np

from din_tf import metrics

# How test rows are scored (`evaluation.scoring`, applied by the runner):
# "served" as the export serves them, "original" as the original code did.
SCORINGS = ("served", "original")


def score(labels, probabilities, groups):
    """AUC (exact), the DIEN repo's calc_auc, GAUC (DIN paper, impressions
    grouped by `groups`) and the DIN repo's "GAUC" (share of groups whose
    positive outscores their negative, over groups with exactly one of each)."""
    labels = np.asarray(labels, np.float64)
    probabilities = np.asarray(probabilities, np.float64)
    groups = np.asarray(groups)
    result = {"auc": metrics.exact_auc(labels, probabilities),
              "dien_calc_auc": metrics.dien_calc_auc(labels, probabilities),
              "gauc": metrics.gauc(groups, labels, probabilities)}
    pos, neg = _pairs(labels, probabilities, groups)
    if len(pos):
        result["dinrepo_gauc"] = metrics.dinrepo_gauc(pos, neg)
    return {k: float(v) for k, v in result.items()}


def _pairs(labels, scores, groups):
    order = np.lexsort((labels, groups))
    g, y, s = groups[order], labels[order], scores[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    pairs = starts[sizes == 2]
    ok = (y[pairs] == 0) & (y[pairs + 1] == 1)
    return s[pairs[ok] + 1], s[pairs[ok]]
