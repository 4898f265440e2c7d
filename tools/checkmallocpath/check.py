"""check(): analyse a library and print the report."""

import sys

from .analysis import analyse
from .report import print_report


def check(lib, verbose=False, roots=None, out=sys.stdout, signal_safe=False):
    result = analyse(lib, roots, signal_safe)
    return print_report(result, lib, verbose, signal_safe, out)
