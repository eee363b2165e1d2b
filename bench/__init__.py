"""`make bench`: what the platform costs, measured side by side in one run."""
