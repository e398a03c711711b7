//! The moai test kit.
