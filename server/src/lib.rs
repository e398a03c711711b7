//! moai server
