"""pytest plugins the tests load into child processes (``-p tests.plugins.<name>``)."""
