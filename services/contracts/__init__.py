"""What services share: the names and payload schemas of the events they exchange. No domain code."""
