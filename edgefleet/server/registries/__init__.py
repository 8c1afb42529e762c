"""Private registries: per-project credentials, encrypted at rest, handed to agents
with the jobs that pull from them."""
