"""Tests of sharded torch models (FSDP2 / DTensor) on two gloo processes.

``launch.py`` starts the processes once and runs every case of ``cases.py``
in each; ``tests/test_distributed.py`` turns each case's outcome into a test.
"""
