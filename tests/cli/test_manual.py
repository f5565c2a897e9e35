"""`mpibind --help` and `man mpibind` agree; `mpibind --version` is the
project's version.

The options are read from the built manual page (roff, the OPTIONS
section) when scdoc built it, else from its scdoc source, and from the
command's --help: the same names, with the same argument words.
"""
import os
import re

from conftest import run

MAN_PAGE = os.environ.get("MPIBIND_MAN_PAGE", "")
MAN_SOURCE = os.environ["MPIBIND_MAN_SOURCE"]


def help_options():
    """{'--name': 'ARG' or ''} from --help: lines that start with an
    option, e.g. '  -n, --ntasks N   ...', '      --env   ...'."""
    res = run(["--help"])
    assert res.returncode == 0 and res.stderr == ""
    out = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[\w-]+)(?: (\S+))?", line)
        if m:
            names = [n for n in (m.group(1), m.group(2)) if n]
            for n in names:
                out[n] = m.group(3) or ""
    return out


def man_options_roff(text):
    """The OPTIONS section of the roff page: each term line is
    '\\fB-n\\fR, \\fB--ntasks\\fR \\fIN\\fR'."""
    section = re.search(r"^\.SH OPTIONS\n(.*?)^\.SH ", text, re.M | re.S)
    assert section, "no OPTIONS section in the manual page"
    out = {}
    for line in section.group(1).splitlines():
        if not line.startswith("\\fB-"):
            continue
        names = re.findall(r"\\fB(-[^\\]+)\\fR", line)
        arg = re.findall(r"\\fI([^\\]+)\\fR", line)
        for n in names:
            out[n.replace("\\-", "-")] = arg[0] if arg else ""
    return out


def man_options_scd(text):
    """The same from the scdoc source: '*-n*, *--ntasks* _N_'."""
    section = re.search(r"^# OPTIONS\n(.*?)^# ", text, re.M | re.S)
    out = {}
    for line in section.group(1).splitlines():
        if not line.startswith("*-"):
            continue
        names = re.findall(r"\*(-[^*]+)\*", line)
        arg = re.findall(r"_([^_]+)_", line)
        for n in names:
            out[n] = arg[0] if arg else ""
    return out


def man_options():
    if MAN_PAGE:
        with open(MAN_PAGE) as f:
            return man_options_roff(f.read())
    with open(MAN_SOURCE) as f:
        return man_options_scd(f.read())


def test_help_and_manual_list_the_same_options():
    helped, manual = help_options(), man_options()
    assert len(helped) >= 18, helped
    assert sorted(helped) == sorted(manual), (
        f"only in --help: {sorted(set(helped) - set(manual))}; "
        f"only in the manual: {sorted(set(manual) - set(helped))}")
    assert helped == manual


def test_manual_source_and_page_agree():
    """The built page is the source's (a stale page would fail here)."""
    if not MAN_PAGE:
        return
    with open(MAN_SOURCE) as f:
        source = man_options_scd(f.read())
    assert source == man_options()


def test_version_is_the_projects():
    res = run(["--version"])
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout == f"mpibind {os.environ['MPIBIND_VERSION']}\n"
