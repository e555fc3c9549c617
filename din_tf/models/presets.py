"""Named option sets: "as the DIEN repo", "as the DIN repo", "as the paper".

Every place where the original code differs from its paper, or has a quirk,
is an option; a preset fills every option the caller leaves as None. These
are model options only: how each family trains is its training recipe
(`din_tf.training.recipes`).
"""

DIEN_REPO_FAMILY = {
    # option: (as the DIEN repo, as the DIEN/DIN papers). Each option's section,
    # with the tests that prove it: docs/original_code.md#option-index
    "frozen_batch_norm": (True, False),      # BN never trains
    "mask_history_sum": (False, True),       # sum includes padding
    "ctr_loss_reduction": ("mean_over_classes", "per_example"),  # mean over B x 2
    "dice_mode": ("dien", "paper"),          # batch statistics at inference
    "aux_reduction": ("all_cells", "valid_cells"),  # padded cells in the mean
    "augru_gate": ("as_coded", "paper"),     # attention scales the old state's weight
    "reset_after": (False, True),            # reset placement
    "attention_softmax": (True, False),      # DIN: the DIN paper drops the softmax
}

DIN_REPO_FAMILY = {
    # option: (as the DIN repo, as the DIN paper); docs/original_code.md#option-index
    "frozen_batch_norm": (True, False),      # BN never trains
    "dice_mode": ("din_repo", "paper"),      # no batch statistics, extra beta
    "attention_softmax": (True, False),      # paper drops the softmax
}

# family -> its options table: column 0 is the family's code, column 1 the paper.
FAMILIES = {"dien_repo": DIEN_REPO_FAMILY, "din_repo": DIN_REPO_FAMILY}


def resolve(model_name, preset, family, given):
    """Returns {option: value}: explicit values win, the preset fills the rest."""
    table = FAMILIES[family]
    allowed = (family, "paper")
    if preset not in allowed:
        raise ValueError(
            f"{model_name}: invalid preset={preset!r}; expected one of {sorted(allowed)}.")
    column = 1 if preset == "paper" else 0
    return {k: (given[k] if given.get(k) is not None else table[k][column]) for k in table
            if k in given}
