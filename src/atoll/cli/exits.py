"""The exit statuses of ``atoll``, for scripts: each failure is also one line on stderr."""

from __future__ import annotations

OK = 0
#: refused or failed: unknown DID or job, bad input, bad key, unreachable provider, a receipt
#: that does not verify
ERROR = 1
#: the command line itself is wrong (unknown option, missing argument)
USAGE = 2
#: the job ended without finishing (failed, stopped, out of time or memory)
JOB_FAILED = 3
#: a fault in atoll itself, not in what it was given
INTERNAL = 70
#: interrupted (Ctrl-C); a job already started goes on
INTERRUPTED = 130

# \b keeps click from rewrapping the lines of this paragraph
EPILOG = f"""\b
Exit status:
  {OK:<4} done
  {ERROR:<4} error: refused, not found, bad input or key, unreachable provider
  {USAGE:<4} the command line is wrong
  {JOB_FAILED:<4} the job ended without finishing
  {INTERNAL:<4} internal error
  {INTERRUPTED:<4} interrupted (Ctrl-C)"""
