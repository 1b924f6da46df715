//! API server locks.
