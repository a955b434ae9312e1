"""Tests of posdoctor.cli (a package so test module names cannot clash with other directories)."""
