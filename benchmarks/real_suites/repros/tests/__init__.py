"""A test package with a helper module, laid out like mealie's ``tests/`` (see
test_loop_in_test_helper_module.py)."""
