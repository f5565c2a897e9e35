"""Every declaration of the Python module's cdef (python/mpibind/_capi.py)
is the header's: the same function with the same return and parameter
types, the same enum values and the same integer #define constants.  CFFI in ABI mode calls what the cdef says
without seeing the header, so a drift here is a silent wrong call.

Both are parsed with pycparser (what CFFI itself uses) and compared as
types, parameter names aside.

usage: check_cdef.py HEADER CAPI_PY
"""

import ast
import re
import sys

from pycparser import c_ast, c_generator, c_parser

# The types the header takes from hwloc.h, opaque as the cdef has them.
PRELUDE = """
typedef struct hwloc_topology *hwloc_topology_t;
typedef struct hwloc_bitmap_s *hwloc_bitmap_t;
typedef const struct hwloc_bitmap_s *hwloc_const_bitmap_t;
typedef struct mpibind_t mpibind_t;
"""


def split_defines(text):
    """text without comments and preprocessor lines, and its integer
    #define constants."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    lines = []
    defines = {}
    skip = False
    for line in text.splitlines():
        s = line.strip()
        if skip or s.startswith("#"):
            m = re.match(r"#\s*define\s+(\w+)\s+(\d+|0x[0-9a-fA-F]+)\s*$", s)
            if m and not skip:
                defines[m.group(1)] = int(m.group(2), 0)
            skip = s.endswith("\\")
            continue
        lines.append(line)
    return "\n".join(lines), defines


def header_text(path):
    """The header's declarations as plain C: no comments, no preprocessor
    lines, no MPIBIND_API, no extern "C"; and its #define constants."""
    text, defines = split_defines(open(path, encoding="utf-8").read())
    text = text.replace('extern "C" {', "").replace("MPIBIND_API", "")
    text = re.sub(r"typedef struct mpibind_t mpibind_t;", "", text)
    # the closing brace of extern "C" is alone on its line
    text = re.sub(r"^\s*}\s*$", "", text, flags=re.M)
    return text, defines


def cdef_text(path):
    """The CDEF string of _capi.py, read without importing the module (which
    would load the library)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and \
                any(getattr(t, "id", None) == "CDEF" for t in node.targets):
            return split_defines(ast.literal_eval(node.value))
    sys.exit("%s has no CDEF" % path)


def unnamed(node):
    """A copy of a declaration's type with parameter names removed."""
    gen = c_generator.CGenerator()

    class Strip(c_ast.NodeVisitor):
        def visit_TypeDecl(self, n):
            n.declname = None
            self.generic_visit(n)

    import copy
    n = copy.deepcopy(node.type)
    Strip().visit(n)
    return re.sub(r"\s+", " ", gen.visit(n)).strip()


def declarations(text, what):
    ast_ = c_parser.CParser().parse(PRELUDE + text, what)
    funcs, enums = {}, {}
    for ext in ast_.ext:
        if isinstance(ext, c_ast.Decl) and isinstance(ext.type,
                                                        c_ast.FuncDecl):
            funcs[ext.name] = unnamed(ext)
        enum = getattr(getattr(ext, "type", None), "values", None)
        if isinstance(getattr(ext, "type", None), c_ast.Enum) and enum:
            value = -1
            for e in enum.enumerators:
                value = int(e.value.value, 0) if e.value is not None \
                    else value + 1
                enums[e.name] = value
    return funcs, enums


def main(header, capi):
    h_text, h_defines = header_text(header)
    c_text, c_defines = cdef_text(capi)
    h_funcs, h_enums = declarations(h_text, header)
    c_funcs, c_enums = declarations(c_text, capi)
    bad = 0
    for name, value in sorted(c_defines.items()):
        if h_defines.get(name) != value:
            print("#define %s: header %s, cdef %s"
                  % (name, h_defines.get(name), value))
            bad += 1
    for name, sig in sorted(c_funcs.items()):
        if name not in h_funcs:
            print("cdef declares %s, which the header does not" % name)
            bad += 1
        elif h_funcs[name] != sig:
            print("%s differs:\n  header: %s\n  cdef:   %s"
                  % (name, h_funcs[name], sig))
            bad += 1
    for name, value in sorted(c_enums.items()):
        if h_enums.get(name) != value:
            print("enum %s: header %s, cdef %s"
                  % (name, h_enums.get(name), value))
            bad += 1
    print("%d cdef functions and %d enum values checked against %d header "
          "functions" % (len(c_funcs), len(c_enums), len(h_funcs)))
    if len(h_funcs) < 40 or len(c_funcs) < 10:
        print("too few declarations parsed: the parser no longer reads them")
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
