"""The ``cerebrum`` command and the composition root that wires the services together."""
