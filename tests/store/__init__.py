"""Tests of posdoctor.store (a package so test module names cannot clash with other directories)."""
