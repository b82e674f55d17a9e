//! End-to-end tests of the ACME platform live in `tests/tests/`.
