"""PEP 440 as Python's `packaging` reads and orders it (pinned by `make advisory-refs`), for
tests/advisory/differential.rs. stdin: `a<TAB>b` lines; stdout: one token a line, `-1`, `0` or
`1`, or `invalid-a` / `invalid-b` (packaging.version.InvalidVersion)."""
import sys

from packaging.version import InvalidVersion, Version


def parse(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None


out = []
for line in sys.stdin.buffer.read().decode("utf-8").split("\n")[:-1]:
    a, b = line.split("\t", 1)
    va, vb = parse(a), parse(b)
    if va is None:
        out.append("invalid-a")
    elif vb is None:
        out.append("invalid-b")
    else:
        out.append(str((va > vb) - (va < vb)))
sys.stdout.write("\n".join(out) + "\n")
