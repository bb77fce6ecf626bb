"""Shared pieces of avt's Python tools: one-line errors and exit code 1 for every bad input."""
import argparse
import sys


class BadInput(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 1, like every other bad input
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(1)


def run(convert, parser, name):
    """Parse arguments and convert; a BadInput becomes one line on stderr and exit status 1."""
    args = parser.parse_args()
    try:
        convert(args)
    except BadInput as e:
        sys.stderr.write(f"{name}: {e}\n")
        sys.exit(1)


def one_line(e):
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0]}" if s else type(e).__name__
