import os

from hypothesis import settings

pytest_plugins = ["tests.fakegithub.fixtures"]

# The suite's runs are reproducible: the same examples every time, so a red CI run means
# the change broke something. `HYPOTHESIS_PROFILE=explore` searches afresh, at length.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
