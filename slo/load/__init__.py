"""Load scenarios: students and admins on realistic journeys, in ramp, steady, spike and soak shapes."""
