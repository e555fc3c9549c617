"""Helpers and the `shared_data` marker for the data tests.

Tests marked `shared_data` read the research-only datasets in ../shared/data.
The top-level pytest.ini excludes the marker by default; run them with
`pytest -m shared_data tests/data`. They skip when the folder is absent.
"""

import os

import pytest

SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                            "shared", "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_data: needs the research-only ../shared/data "
                                       "folder; not part of the default run")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in item.keywords and not os.path.isdir(SHARED_DATA):
            item.add_marker(pytest.mark.skip(reason=f"{SHARED_DATA} not found"))
