#!/usr/bin/env python3
"""Paired rounds: `pair.py N PREP A B` runs commands A and B N times each,
in alternating order, running the shell command PREP before each, and
prints both medians, the median of the per-round differences B - A and how
many rounds B won. On a noisy VM this sees a 0.3 ms change that
consecutive hyperfine blocks (20-30 % apart) cannot."""
import shlex
import statistics
import subprocess
import sys
import time


def timed(prep, cmd):
    subprocess.run(prep, shell=True)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def main():
    n, prep = int(sys.argv[1]), sys.argv[2]
    a, b = shlex.split(sys.argv[3]), shlex.split(sys.argv[4])
    ta, tb = [], []
    for i in range(n):
        if i % 2:
            ta.append(timed(prep, a))
            tb.append(timed(prep, b))
        else:
            tb.append(timed(prep, b))
            ta.append(timed(prep, a))
    d = [y - x for x, y in zip(ta, tb)]
    print(
        "A median %.2f  B median %.2f  median(B-A) %.2f ms  B<A in %d of %d rounds"
        % (statistics.median(ta), statistics.median(tb), statistics.median(d),
           sum(1 for v in d if v < 0), n)
    )


main()
