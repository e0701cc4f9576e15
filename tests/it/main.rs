//! The integration test binary: one binary, topic modules (DESIGN.md).

mod cases;
mod support;
