pytest_plugins = ["tests.fakegithub.fixtures"]
