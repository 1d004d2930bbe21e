#!/usr/bin/env python3
"""Judges one guest run from its console log.

The run passes only if the guest's KTAP plan is present and complete, every
test line is "ok", the init reported the end of the run, and the kernel
printed no splat (warning, BUG, oops, KASAN, lockdep, RCU stall, panic...).

usage: analyse.py LOG LABEL    prints "LABEL: N passed, M failed" last;
                               exit status 0 only if the run passed.
"""
import re
import sys

# Kernel lines carry a printk timestamp (CONFIG_PRINTK_TIME); the guest's own
# output does not.
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\]")
TEST_LINE = re.compile(r"^(not ok|ok) (\d+) (\S+)(.*)$")
PLAN_LINE = re.compile(r"^1\.\.(\d+)$")
SPLATS = [
    r"WARNING:",
    r"BUG:",
    r"kernel BUG at",
    r"Oops",
    r"Unable to handle kernel",
    r"general protection fault",
    r"KASAN:",
    r"UBSAN:",
    r"possible recursive locking",
    r"possible circular locking",
    r"inconsistent lock state",
    r"suspicious RCU usage",
    r"DEBUG_LOCKS_WARN_ON",
    r"INFO: ",  # lockdep, hung tasks, RCU stalls
    r"self-detected stall",
    r"detected stalls",
    r"soft lockup",
    r"hung_task|blocked for more than",
    r"Kernel panic",
    r"Call Trace:",
    r"Call trace:",
    r"list_add corruption|list_del corruption",
    r"refcount_t:",
    r"Bad rss-counter",
    r"bad pmd|bad pte|Bad page",
    r"page_table_check",
]
SPLAT = re.compile("|".join(SPLATS))


def main():
    log, label = sys.argv[1], sys.argv[2]
    with open(log, errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]

    problems = []
    splats = [l for l in lines if SPLAT.search(l)]
    if splats:
        problems.append("kernel splat in the console:\n    " + "\n    ".join(splats[:20]))

    guest = [l for l in lines if not KERNEL_LINE.match(l)]
    plan = None
    results = {}
    failed = []
    in_ktap = False
    for l in guest:
        if l == "KTAP version 1" and plan is None:
            in_ktap = True
            continue
        if not in_ktap:
            continue
        m = PLAN_LINE.match(l)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = TEST_LINE.match(l)
        if m:
            num = int(m.group(2))
            ok = m.group(1) == "ok"
            results[num] = ok
            if not ok:
                failed.append(f"{m.group(3)}{m.group(4)}")
    passed = sum(1 for ok in results.values() if ok)
    nfailed = len(failed)

    if plan is None:
        problems.append("no KTAP test plan in the console")
    elif len(results) != plan or set(results) != set(range(1, plan + 1)):
        missing = plan - len(results)
        problems.append(f"short run: plan 1..{plan}, {len(results)} results")
        nfailed += max(missing, 1)
    if not any(l.startswith("# mmview-init: done") for l in guest):
        problems.append("the guest did not finish (timeout, crash or panic)")
    exits = [l for l in guest if l.startswith("# mmview-init:") and "exited with status" in l]
    if exits and not exits[-1].endswith("status 0"):
        problems.append(exits[-1][2:])

    for f in failed:
        print(f"{label}: not ok {f}")
    for p in problems:
        print(f"{label}: {p}")
    if problems and nfailed == 0:
        nfailed = 1  # the run itself failed
    print(f"{label}: {passed} passed, {nfailed} failed")
    return 0 if nfailed == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
