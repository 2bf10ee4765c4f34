"""Prints one closing line for pytest's JUnit XML reports of the test tiers: 'tests: N passed, N failed, N skipped'."""
import sys
import xml.etree.ElementTree as ET

counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
failed = counts["failures"] + counts["errors"]
print(f"tests: {counts['tests'] - failed - counts['skipped']} passed, {failed} failed, {counts['skipped']} skipped")
