"""Named option sets: "as the DIEN repo", "as the DIN repo", "as the paper".

Every place where the original code differs from its paper, or has a quirk,
is an option; a preset fills every option the caller leaves as None. These
are model options only: how each family trains is its training recipe
(`din_tf.training.recipes`).
"""

DIEN_REPO_FAMILY = {
    # option: (as the DIEN repo, as the DIEN/DIN papers)
    "frozen_batch_norm": (True, False),      # spec §0.1: BN never trains
    "mask_history_sum": (False, True),       # spec §0.4: sum includes padding
    "ctr_loss_reduction": ("mean_over_classes", "per_example"),  # §4: mean over B x 2
    "dice_mode": ("dien", "paper"),          # §2.1: batch statistics at inference
    "aux_reduction": ("all_cells", "valid_cells"),  # §4: padded cells in the mean
    "augru_gate": ("as_coded", "paper"),     # §3.2
    "reset_after": (False, True),            # §3.2: reset placement
    "attention_softmax": (True, False),      # DIN: the DIN paper drops the softmax
}

DIN_REPO_FAMILY = {
    # option: (as the DIN repo, as the DIN paper)
    "frozen_batch_norm": (True, False),      # §8.1.1
    "dice_mode": ("din_repo", "paper"),      # §8.1.7
    "attention_softmax": (True, False),      # §8.1.5: paper drops the softmax
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
