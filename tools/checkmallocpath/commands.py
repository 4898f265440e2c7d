"""Running binutils, and the exit for a library the tool cannot check (status 2, never a pass)."""

import subprocess
import sys


def fail_usage(message):
    print(f"check-malloc-path: {message}", file=sys.stderr)
    sys.exit(2)


def run(argv):
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")
    except FileNotFoundError:
        fail_usage(f"{argv[0]} not found (install binutils)")
    if result.returncode != 0:
        fail_usage(f"{' '.join(argv)} failed:\n{result.stderr}")
    return result.stdout
