from __future__ import annotations

import pytest

from npsloop_classifier.handlers import Classifier


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()
