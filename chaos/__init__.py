"""Chaos engineering for the Cerebrum platform: Chaos Toolkit experiments and the actions and probes they call.

``chaos.actions`` and ``chaos.probes`` are the Chaos Toolkit extension (``"module": "chaos.actions"``);
``chaos.runner`` starts a private distributed platform and runs the experiments in
``chaos/experiments`` against it; ``chaos.cli`` is the ``cerebrum chaos`` command.
"""
