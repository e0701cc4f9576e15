//! The integration test binary: one binary, topic modules (DESIGN.md).

mod alloc;
pub mod cases;
mod errors;
mod flood;
mod fuzz;
mod health;
mod malformed;
mod ops;
mod server;
mod support;
