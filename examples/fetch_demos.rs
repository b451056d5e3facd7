//! Downloads the demo models into the default models directory (or `$TOKENSCOPE_HOME/models`).
//! `cargo run --example fetch_demos [-- --verify]`

fn main() {
    let paths = tokenscope::paths::Paths::resolve();
    let mut opts = tokenscope::demo::FetchOptions::new(&paths.models_dir);
    opts.wheels_dir = paths.wheels_dir();
    opts.verify = std::env::args().any(|a| a == "--verify");
    match tokenscope::demo::fetch_demos_with(&paths.models_dir, &opts, |line| eprintln!("{line}")) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
