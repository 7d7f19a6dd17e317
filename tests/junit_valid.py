"""Validates a JUnit XML file against Jenkins' JUnit schema (junit-10.xsd, as pytest's own
tests use it), taken from pytest's source distribution on PyPI; prints the number of test
cases and failures.

    junit_valid.py REPORT.xml CACHE_DIR
"""
import os
import subprocess
import sys
import tarfile

import xmlschema

PYTEST = "pytest==8.3.5"


def schema(cache):
    path = os.path.join(cache, "junit-10.xsd")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        PYTEST, "-d", cache], check=True)
        sdist = os.path.join(cache, "pytest-8.3.5.tar.gz")
        with tarfile.open(sdist) as tar:
            member = tar.getmember("pytest-8.3.5/testing/example_scripts/junit-10.xsd")
            with tar.extractfile(member) as src, open(path + ".part", "wb") as out:
                out.write(src.read())
        os.replace(path + ".part", path)
    return xmlschema.XMLSchema(path)


def main():
    report, cache = sys.argv[1], sys.argv[2]
    xsd = schema(cache)
    xsd.validate(report)
    doc = xsd.to_dict(report)
    suites = doc.get("testsuite", [])
    cases = sum(len(s.get("testcase", [])) for s in suites)
    failures = sum(int(s.get("@failures", 0)) for s in suites)
    print(cases, failures)


if __name__ == "__main__":
    main()
