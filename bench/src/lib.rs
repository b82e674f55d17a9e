//! acme-bench
