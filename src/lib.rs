//! pipetrim: the edges around the incremental core (git, files, CLI, output).

pub mod bootstrap;
pub mod builder;
pub mod finish;
