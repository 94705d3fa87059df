"""Ways to start workers: local processes, tasks of a distributed engine, shell commands."""
