"""Whether the Helm rendering tests run here.

They need the `helm` extra (helm-python-sdk). Where it is absent they are skipped, and the
run's summary says so (conftest.py), unless `FLUX_REVIEW_REQUIRE_HELM` is set (`.ci/run`
sets it): then they fail.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

HELM = importlib.util.find_spec("helm_python") is not None
REQUIRED = bool(os.environ.get("FLUX_REVIEW_REQUIRE_HELM"))
SKIP_REASON = "helm-python-sdk is not installed (pip install '.[test,helm]')"

requires_helm = pytest.mark.skipif(not HELM and not REQUIRED, reason=SKIP_REASON)
