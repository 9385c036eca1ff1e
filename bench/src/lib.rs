//! Shared helpers for the criterion suites.
