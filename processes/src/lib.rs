//! acme-processes
