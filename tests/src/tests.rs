//! Simulator self-tests with the toy node.
