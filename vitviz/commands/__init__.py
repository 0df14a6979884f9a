"""The command line's commands beyond explain and prefetch: each a module with a ``*_command(argv) -> int``
that python -m vitviz dispatches to. They sit above the library (they draw with vitviz.pictures), beside
vitviz/__main__.py."""
