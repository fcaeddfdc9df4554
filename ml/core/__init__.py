"""The shared core every algorithm builds on: hooks, errors, models, networks, seeding."""
