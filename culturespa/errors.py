"""The one exception type the CLI turns into a one-line message and exit code 2."""


class CulturespaError(Exception):
    """Bad input or configuration; the message names the file, item or field at fault."""
