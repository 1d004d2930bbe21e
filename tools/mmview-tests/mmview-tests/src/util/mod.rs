//! Helpers shared by the tests.

pub mod child;
pub mod fault;
pub mod mem;
pub mod pages;
pub mod process;
pub mod procfs;
pub mod sys;
pub mod thread;
pub mod view;
