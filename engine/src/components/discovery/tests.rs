//! Discovery unit tests.
