"""The shared service kit: domain-free building blocks every Cerebrum service is made of."""
