//! Operating-system plumbing. The socket back ends of the multi-core
//! engine live here; `sys` holds every `unsafe` block of the crate.

#[allow(unsafe_code)]
pub mod sys;
