"""Files and command line: the only code that writes ``out/`` (as a set) and parses arguments."""

from scrybe_kms.cli.main import main, run_stack

__all__ = ["main", "run_stack"]
