//! Helpers shared by the tests.

pub mod mem;
pub mod procfs;
pub mod sys;
pub mod thread;
