//! Channel unit tests.
