//! Multi-node tests.
