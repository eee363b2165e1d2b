"""``python -m dashboards build`` writes the dashboards' JSON and the rules file;
``python -m dashboards check`` exits 1 when the committed copies differ from what the code builds.
"""

from __future__ import annotations

import sys

from dashboards.build import build, check, shown

USAGE = "usage: python -m dashboards build|check"


def main(argv: list[str]) -> int:
    if argv == ["build"]:
        for path in build():
            print(f"wrote {shown(path)}")
        return 0
    if argv == ["check"]:
        problems = check()
        if not problems:
            print("dashboards and rules match the code")
            return 0
        print("Generated observability files are out of date:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Run `python -m dashboards build` and commit the result.", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
