"""Shared test set-up.

``reference_model.py`` (next to this file) is importable because pytest puts
this directory on ``sys.path`` (rootdir-relative "prepend" import mode; the
tests directory is not a package).  The repository root is added too, so
``pytest`` works from a checkout without installing pkpd.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

try:  # hypothesis is a test dependency; keep property tests short and deterministic
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "pkpd",
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile("pkpd")
except ImportError:  # pragma: no cover
    pass

# When a property test fails, hypothesis's pytest plugin imports its patch
# writer (libcst), which emits a DeprecationWarning (mypy_extensions.TypedDict)
# inside pytest's report hook; with ``filterwarnings = error`` that turns a
# clean failure report into an INTERNALERROR.  Import it once here, with that
# warning silenced, so a failing example is reported normally.
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - optional dependency of hypothesis
        pass
