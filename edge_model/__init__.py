"""Offline training of moodcast's emotion model (needs the `train` extra: keras + a backend)."""
