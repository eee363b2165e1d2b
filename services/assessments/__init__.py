"""The assessments service: questions, test attempts, scoring, ratings and leaderboards."""
