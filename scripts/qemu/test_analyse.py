#!/usr/bin/env python3
"""Self-test of analyse.py: the judge must fail every kind of bad run."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOOD = """[    0.000000] Linux version 6.12.118
[    1.000000] kasan: KernelAddressSanitizer initialized
[    1.100000] rcu: 	RCU lockdep checking is enabled.
[    1.200000] ... MAX_LOCKDEP_SUBCLASSES:  8
# mmview-init: running /bin/mmview-tests
KTAP version 1
1..3
ok 1 first
[    2.000000]     ok 1 kernel_case
# a diagnostic
ok 2 second
ok 3 third
# mmview-tests: 3 passed, 0 failed
# mmview-init: tests exited with status 0
# mmview-init: done
"""

CASES = [
    ("clean run", GOOD, 0, "t: 3 passed, 0 failed"),
    ("failed test", GOOD.replace("ok 2 second", "not ok 2 second # boom"), 1, "t: 2 passed, 1 failed"),
    ("kernel warning", GOOD.replace("# a diagnostic", "[    3.0] WARNING: CPU: 0 PID: 1 at mm/memory.c:1"), 1, None),
    ("KASAN report", GOOD + "[    9.0] BUG: KASAN: slab-use-after-free in foo\n", 1, None),
    ("lockdep report", GOOD + "[    9.0] WARNING: possible circular locking dependency detected\n", 1, None),
    ("RCU stall", GOOD + "[    9.0] rcu: INFO: rcu_sched self-detected stall on CPU\n", 1, None),
    ("hung task", GOOD + "[    9.0] INFO: task foo:12 blocked for more than 120 seconds.\n", 1, None),
    ("panic", GOOD + "[    9.0] Kernel panic - not syncing: Attempted to kill init!\n", 1, None),
    ("short plan", GOOD.replace("ok 3 third\n", ""), 1, None),
    ("no plan", GOOD.replace("1..3\n", ""), 1, None),
    ("no KTAP at all", GOOD.split("KTAP")[0], 1, None),
    ("unfinished", GOOD.replace("# mmview-init: done\n", ""), 1, None),
    ("non-zero exit", GOOD.replace("status 0", "status 139"), 1, None),
]


def main():
    bad = 0
    for name, log, want_rc, want_last in CASES:
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write(log)
        r = subprocess.run([sys.executable, os.path.join(HERE, "analyse.py"), f.name, "t"],
                           capture_output=True, text=True)
        os.unlink(f.name)
        last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        ok = r.returncode == want_rc and (want_last is None or last == want_last)
        if want_rc and not last.endswith("failed") or (want_rc and last.endswith(" 0 failed")):
            ok = False
        print(f"{'ok' if ok else 'not ok'} - analyse: {name} ({last})")
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
