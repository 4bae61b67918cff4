pytest_plugins = ["tasks.pytest_plugin"]
