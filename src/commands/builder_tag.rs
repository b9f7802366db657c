//! `pipetrim builder-tag FLAVOR`: the tag `bin/ci-builder tag FLAVOR`
//! prints (SPEC §9).

use serde_json::json;

use super::{print_out, session};
use crate::ci::builder::{Arch, Flavor, builder_tag};
use crate::cli::Global;
use crate::error::Error;

pub fn run(g: &Global, flavor: Flavor, arch: Arch) -> Result<i32, Error> {
    let s = session(g)?;
    let tag =
        builder_tag(&s.root, s.files(), flavor, arch).map_err(|e| Error::Usage(e.to_string()))?;
    print_out(g, &json!(tag), &tag)
}
