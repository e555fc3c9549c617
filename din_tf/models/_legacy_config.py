"""Model configs written under older argument names, read under the current ones."""

# Old constructor argument -> its current name. The DIEN-repo models took the
# vocabulary sizes as n_uid / n_mid / n_cat (the original's variable names).
LEGACY_ARGUMENTS = {"n_uid": "n_users", "n_mid": "n_items", "n_cat": "n_categories"}


def rename_legacy_arguments(config):
    """A copy of the model config `config` with every legacy argument under
    its current name (for `from_config` of `.keras` files and configs saved
    before the rename). Giving both names is an error."""
    config = dict(config)
    for old, new in LEGACY_ARGUMENTS.items():
        if old not in config:
            continue
        if new in config:
            raise ValueError(f"Model config has both {old!r} (the old name) and {new!r}; "
                             "expected one of them.")
        config[new] = config.pop(old)
    return config
