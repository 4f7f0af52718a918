"""The ``inception-fer`` command line: one module per subcommand."""
