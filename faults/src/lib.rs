//! acme-faults
