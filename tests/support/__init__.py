"""What test modules share: rigs, helpers and constants. A test module imports from here, never from
another test module or a conftest (tests/test_layout.py checks); fixtures stay in conftest.py files."""
