//! `pipetrim watch`: the live answer while editing (the engine is
//! [`crate::watch`]).

use crate::cli::{Format, Global, WatchArgs};
use crate::error::Error;
use crate::watch;

pub fn run(g: &Global, a: &WatchArgs) -> Result<i32, Error> {
    if g.from_index {
        return Err(Error::Usage(
            "watch follows the work tree; --from-index (or PIPETRIM_FROM_INDEX) does not apply"
                .into(),
        ));
    }
    let opts = g.session_options()?;
    let output = match g.format {
        Format::Json => watch::Output::Json,
        Format::Text | Format::Dot | Format::Mermaid | Format::Markdown => watch::Output::Text,
    };
    watch::run(&g.repo, &opts, a.base.clone(), output)
}
