//! acme-sim
