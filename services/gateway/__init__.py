"""The API gateway: one entry point, JWT at the edge, rate limits, and the strangler-fig split."""
