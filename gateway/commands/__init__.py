"""The ``gateway`` command's subcommands (:mod:`gateway.cli` parses the arguments): run, demo,
plan, tail, schemas, topics, bench. Commands compose the runtime and the adapters; nothing
below imports a command."""
