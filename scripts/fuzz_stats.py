"""Summarise libFuzzer logs: executions, coverage at start, half-way and end, and when coverage last grew.

Usage: fuzz_stats.py LOG...   (the output of `cargo fuzz run`, one log per target)
"""

import os
import re
import sys

LINE = re.compile(r"#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/")


def main() -> None:
    print("| target | execs | cov after loading the corpus → half-way → end | coverage last grew at | corpus in memory | crash |")
    print("|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        text = open(path, errors="replace").read()
        # From INITED on: the lines before it only replay the corpus the run started with.
        matches = list(LINE.finditer(text))
        inited = next((i for i, m in enumerate(matches) if m[2] == "INITED"), 0)
        points = [(int(m[1]), int(m[3]), int(m[5])) for m in matches[inited:]]
        if not points:
            continue
        total = points[-1][0]
        start, end = points[0][1], max(p[1] for p in points)
        half = max((p[1] for p in points if p[0] <= total / 2), default=start)
        grew = min(p[0] for p in points if p[1] == end)
        crash = any(s in text for s in ("deadly signal", "==ERROR", "panicked at"))
        name = os.path.basename(path).removesuffix(".log")
        print(f"| `{name}` | {total:,} | {start} → {half} → {end} | {100 * grew / total:.0f} % of the run | {points[-1][2]:,} | {'yes' if crash else 'no'} |")


if __name__ == "__main__":
    main()
