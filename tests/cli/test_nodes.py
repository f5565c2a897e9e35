"""Real nodes of the kinds docs/algorithm.md "Beyond the original" covers
(tests/data/cases), at the command line: each maps, or fails with one line
that says why, and the mapping follows the rule stated there."""
import os

from conftest import check_error, clean_env, case, parse_report, run


def test_newer_hwloc_file_says_so():
    """An hwloc 3 export (XML 3.0): from --topology and from
    MPIBIND_TOPOFILE the message names the newer format and the export
    this hwloc reads, not a broken file."""
    path = case("xml-v3.xml")
    line = check_error(run(["-n", "1", "--topology", path]), "xml-v3.xml",
                       status=2)
    assert "newer hwloc" in line and "3.0" in line, line
    assert "--export-xml-flags v2" in line, line
    res = run(["--dryrun", "--strict", "--", "true"],
              env=clean_env(MPIBIND_TOPOFILE=path))
    assert res.returncode != 0
    assert "newer hwloc" in res.stderr and "--export-xml-flags v2" in \
        res.stderr, res.stderr
