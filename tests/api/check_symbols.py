"""The dynamic symbols libmpibind.so defines are exactly the functions that
mpibind.h declares public (MPIBIND_API): no internal name leaks out of the
library (the lib/ files share mb_* names, hidden by the build), and no
declared function is missing from it.

usage: check_symbols.py NM LIBRARY HEADER
"""

import re
import subprocess
import sys


def header_functions(path):
    """Names of the functions declared with MPIBIND_API."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)   # the macro itself
    names = set()
    for decl in re.findall(r"\bMPIBIND_API\b([^;{]*)\(", text):
        names.add(re.findall(r"[A-Za-z_]\w*", decl)[-1])
    return names


def library_symbols(nm, path):
    """Names the shared object defines in its dynamic symbol table."""
    out = subprocess.run([nm, "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[2].split("@")[0])
    return names


def main(nm, library, header):
    declared = header_functions(header)
    exported = library_symbols(nm, library)
    if len(declared) < 40:
        sys.exit("found only %d MPIBIND_API declarations in %s: the parser "
                 "no longer reads the header" % (len(declared), header))
    extra = sorted(exported - declared)
    missing = sorted(declared - exported)
    for name in extra:
        print("exported but not in the header: %s" % name)
    for name in missing:
        print("declared in the header but not exported: %s" % name)
    print("%d public functions, %d exported symbols"
          % (len(declared), len(exported)))
    return 1 if extra or missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
