"""The ``capsim`` subcommands, one module each (see ``capsim.cli``)."""
