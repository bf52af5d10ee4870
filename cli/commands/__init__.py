"""The `vibra` commands, one module per command group; `vibra_cli.main` mounts them in help order."""
