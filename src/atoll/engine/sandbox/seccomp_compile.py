"""Compiles the job's system call filter: run by the system's interpreter, which has
libseccomp's binding (python3-seccomp), with the policy as JSON on standard input
(see :mod:`atoll.engine.sandbox.seccomp`); writes the BPF program to standard output.

Standalone on purpose: it imports nothing of Atoll, so the interpreter that runs it needs
nothing but the binding.
"""

from __future__ import annotations

import json
import sys

import seccomp  # type: ignore[import-not-found]


def main() -> None:
    policy = json.load(sys.stdin)
    filt = seccomp.SyscallFilter(seccomp.ALLOW)
    # a process may not get rid of the filter, nor gain privileges through exec
    filt.set_attr(seccomp.Attr.CTL_NNP, 1)
    for name in policy["deny"]:
        filt.add_rule(seccomp.ERRNO(policy["eperm"]), name)
    for name in policy["unsupported"]:
        filt.add_rule(seccomp.ERRNO(policy["enosys"]), name)
    arg = policy["clone_flags_arg"]
    for flag in policy["clone_namespace_flags"]:
        filt.add_rule(
            seccomp.ERRNO(policy["eperm"]),
            "clone",
            seccomp.Arg(arg, seccomp.MASKED_EQ, flag, flag),
        )
    sys.stdout.flush()
    filt.export_bpf(sys.stdout)


if __name__ == "__main__":
    main()
