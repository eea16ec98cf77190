"""Print the first ```bash block after a README heading, so CI runs exactly what the README says.

    python .ci/readme_block.py README.md "Quick start" [--replace OLD NEW ...]

Exits with 2 when the heading or its block is missing, and when a --replace finds nothing to
replace (the README and CI would have drifted apart).
"""
import argparse
import re
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("readme", type=Path)
    p.add_argument("heading")
    p.add_argument("--replace", nargs=2, action="append", default=[], metavar=("OLD", "NEW"))
    args = p.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    heading = re.search(rf"^#+ {re.escape(args.heading)}\s*$", text, re.M)
    if heading is None:
        print(f"{args.readme}: no heading '{args.heading}'", file=sys.stderr)
        return 2
    block = re.search(r"^```bash\n(.*?)^```", text[heading.end():], re.M | re.S)
    if block is None:
        print(f"{args.readme}: no ```bash block after '{args.heading}'", file=sys.stderr)
        return 2
    script = block.group(1)
    for old, new in args.replace:
        if old not in script:
            print(f"{args.readme}: '{old}' is not in the '{args.heading}' block", file=sys.stderr)
            return 2
        script = script.replace(old, new)
    print(script, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
