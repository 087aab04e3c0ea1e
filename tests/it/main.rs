//! The one integration test binary (one link step on a 2-core machine): every module is a
//! family of tests of one part, driven as a user would drive it.

mod child_example;
mod children;
mod cli;
mod formats;
mod hooks;
mod install;
mod interop;
mod loader;
mod runner;
mod schema;
mod server;
mod skills;
mod support;
