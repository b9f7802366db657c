#!/usr/bin/env python3
"""Ratios to git on the same tree in the same round: `ratio.py N BASE BIN...`
(run in the checkout). Each round runs `git ls-files`, `git diff --name-only
BASE...HEAD`, `git ls-files -s` and, for each pipetrim binary, a warm JSON
trim, a warm YAML trim, a warm fingerprint (all `--from-index`, cache in
/tmp/pipetrim-ratio-warm, filled first) and an empty-cache JSON trim, in
alternating order. Prints the medians and the median of each round's ratio:
trims to `ls-files` + `diff` (the floor of issue 15), the fingerprint to
`ls-files -s`."""
import shutil
import statistics
import subprocess
import sys
import time

WARM, EMPTY = "/tmp/pipetrim-ratio-warm", "/tmp/pipetrim-ratio-empty"


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def main():
    n, base, bins = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    trim = ["trim", "--from-index", "--base", base]
    cmds = {
        "git ls-files": ["git", "ls-files"],
        "git diff": ["git", "diff", "--name-only", base + "...HEAD"],
        "git ls-files -s": ["git", "ls-files", "-s"],
    }
    for b in bins:
        cmds[b + " json"] = [b] + trim + ["--format", "json", "--cache-dir", WARM]
        cmds[b + " yaml"] = [b] + trim + ["--cache-dir", WARM]
        cmds[b + " fingerprint"] = [b, "fingerprint", "--from-index", "--cache-dir", WARM]
        cmds[b + " empty"] = [b] + trim + ["--format", "json", "--cache-dir", EMPTY]
    for c in cmds.values():  # warms the cache and the page cache
        timed(c)
    times = {k: [] for k in cmds}
    ratios = {}
    for i in range(n):
        for k in list(cmds) if i % 2 == 0 else list(cmds)[::-1]:
            if k.endswith(" empty"):
                shutil.rmtree(EMPTY, ignore_errors=True)
            times[k].append(timed(cmds[k]))
        floor = times["git ls-files"][-1] + times["git diff"][-1]
        for b in bins:
            for kind, den in (("json", floor), ("yaml", floor), ("empty", floor),
                              ("fingerprint", times["git ls-files -s"][-1])):
                ratios.setdefault((b, kind), []).append(times[b + " " + kind][-1] / den)
    for k, v in times.items():
        print("%-40s %7.2f ms" % (k[-40:], statistics.median(v)))
    for (b, kind), v in ratios.items():
        print("%-30s %-12s %.2fx" % (b[-30:], kind, statistics.median(v)))


main()
