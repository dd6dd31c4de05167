"""A plugin that registers a backend no one installed, and nothing else.

Loaded with ``-p tests.plugins.fake_backend`` (before conftest), it proves
that the registry is the one list: the backend shows in the test suite's
parametrisation and the command line's choices with no other edit.
"""

from unified_params.backends import registry

FAKE = registry.register(
    registry.Backend(
        name="fakefw",
        module="fakefw_not_installed",
        layer_base="nn.Layer",
        layer_name="fakefw.nn.Layer",
        extra="fakefw",
        adapter="fakefw_not_installed.adapter",
        import_priority=9,
        detect_priority=9,
    )
)
