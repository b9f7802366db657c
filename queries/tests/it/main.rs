//! The integration tests of `pipetrim-queries`, in one test binary (one link
//! instead of one per file). Shared helpers live in [`common`].

mod common;
mod hostile;
mod known_stamps;
mod manifest_cache;
mod model_reuse;
mod prime;
mod python_fixture;
mod python_real;
