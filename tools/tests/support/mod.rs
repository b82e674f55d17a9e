//! Helpers shared by the tests that run real TigerBeetle clusters.

#[allow(dead_code)] // Each test file uses its part.
pub mod cluster;
