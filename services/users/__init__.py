"""The users service: accounts, authentication, sessions and profiles."""
