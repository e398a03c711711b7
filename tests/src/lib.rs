//! The moai test kit.

pub mod fake_telegram;
