//! Everywhere models are looked for: tokenscope's own directories and the
//! other tools' stores ([`super::stores`]), listed together and resolved
//! from what `--model` says.

use std::path::{Path, PathBuf};

use super::stores::{self, Store, StoreDir};
use super::{CatalogError, ModelCard, read_card, scan};
use crate::text::escape_inline;

/// The places models are looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    /// tokenscope's own directories (the models directory, `models_dir`):
    /// every `*.gguf` directly in them.
    pub dirs: Vec<PathBuf>,
    /// Other tools' stores, read only.
    pub stores: Vec<StoreDir>,
}

/// A model file found, before its header is read.
struct Found {
    path: PathBuf,
    id: String,
    source: Option<Store>,
    parts: u32,
}

impl Places {
    /// tokenscope's own directories only.
    pub fn own(dirs: Vec<PathBuf>) -> Places {
        Places {
            dirs,
            stores: Vec::new(),
        }
    }

    /// `dirs` and the directories of `stores` as this process's environment
    /// places them ([`stores::store_dirs`]).
    pub fn with_stores(dirs: Vec<PathBuf>, stores: &[Store]) -> Places {
        Places {
            dirs,
            stores: stores::store_dirs(stores, |k| {
                std::env::var_os(k)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            }),
        }
    }

    /// The directories, own first, then the stores' that exist: `a, b`.
    pub fn searched(&self) -> String {
        let mut all: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        all.extend(
            self.stores
                .iter()
                .filter(|s| s.root.exists())
                .map(|s| format!("{} ({})", s.root.display(), s.store.label())),
        );
        if all.is_empty() {
            "(no directories)".to_string()
        } else {
            all.join(", ")
        }
    }

    /// Every model file (no header read) and the problems met, in listing
    /// order: tokenscope's directories' errors, their files by file name,
    /// then each store's rows as it lists them.
    fn list(&self) -> Vec<Result<Found, CatalogError>> {
        let (files, errors) = scan(&self.dirs);
        let mut out: Vec<Result<Found, CatalogError>> = errors.into_iter().map(Err).collect();
        out.extend(
            stores::models_among(files)
                .into_iter()
                .map(|(path, parts)| {
                    Ok(Found {
                        id: path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        path,
                        source: None,
                        parts,
                    })
                }),
        );
        for dir in &self.stores {
            out.extend(stores::list(dir).into_iter().map(|r| {
                r.map(|l| Found {
                    path: l.path,
                    id: l.id,
                    source: Some(dir.store),
                    parts: l.parts,
                })
            }));
        }
        out
    }

    /// The cards of every model (see [`Places::list`] for the order; read
    /// from the headers only); files and stores that cannot be read are
    /// errors in the list.
    pub fn discover(&self) -> Vec<Result<ModelCard, CatalogError>> {
        self.list()
            .into_iter()
            .map(|r| r.and_then(|f| card_of(&f)))
            .collect()
    }

    /// A model by path; by what its owner calls it (`name:tag`,
    /// `org/repo/file`, a file name; case-insensitive, an Ollama name
    /// without a tag meaning `:latest`); else by a case-insensitive part of
    /// the file names in tokenscope's directories, else of the names in the
    /// stores.
    ///
    /// # Errors
    /// [`CatalogError::NoMatch`] (where it looked, what there is),
    /// [`CatalogError::Ambiguous`], the error row of the model named (a
    /// missing Ollama blob), or what [`read_card`] says of the file.
    pub fn resolve(&self, name_or_path: &str) -> Result<ModelCard, CatalogError> {
        let as_path = Path::new(name_or_path);
        if as_path.exists() {
            return read_card(as_path);
        }
        let query = name_or_path.to_lowercase();
        let query_stem = query.strip_suffix(".gguf").unwrap_or(&query);
        let latest = format!("{query}:latest");
        let listed = self.list();
        let found: Vec<&Found> = listed.iter().flatten().collect();
        let is_exact = |f: &&Found| {
            let id = f.id.to_lowercase();
            id == query
                || (f.source == Some(Store::Ollama) && id == latest)
                || (f.source.is_none() && stem(&f.path) == query_stem)
        };
        let exact: Vec<&Found> = found.iter().copied().filter(is_exact).collect();
        if let [one] = exact.as_slice() {
            return card_of(one);
        }
        if let Some(e) = listed.iter().find_map(|r| match r {
            Err(
                e @ (CatalogError::MissingBlob { model, .. }
                | CatalogError::BadManifest { model, .. }),
            ) if model.to_lowercase() == query || model.to_lowercase() == latest => Some(e),
            _ => None,
        }) {
            return Err(same_error(e));
        }
        let looks_like_path =
            name_or_path.contains('/') || name_or_path.contains(std::path::MAIN_SEPARATOR);
        let part_of = |own: bool| -> Vec<&Found> {
            found
                .iter()
                .copied()
                .filter(|f| f.source.is_none() == own)
                .filter(|f| {
                    let hay = if own {
                        file_name(&f.path)
                    } else {
                        f.id.clone()
                    };
                    hay.to_lowercase().contains(&query)
                })
                .collect()
        };
        let mut matches = part_of(true);
        if matches.is_empty() {
            matches = part_of(false);
        }
        match matches.as_slice() {
            [one] => card_of(one),
            [] if looks_like_path || (query.ends_with(".gguf") && !name_or_path.is_empty()) => {
                read_card(as_path)
            }
            [] => Err(CatalogError::NoMatch {
                query: name_or_path.to_string(),
                searched: self.searched(),
                available: if found.is_empty() {
                    "none".to_string()
                } else {
                    found
                        .iter()
                        .map(|f| escape_inline(&f.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
            several => Err(CatalogError::Ambiguous {
                query: name_or_path.to_string(),
                matches: several
                    .iter()
                    .map(|f| match f.source {
                        None => format!("    {}", f.path.display()),
                        Some(s) => format!("    {} ({})", f.id, s.label()),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            }),
        }
    }
}

/// The file name of `p`, lossy.
fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The lower-case file stem of `p`.
fn stem(p: &Path) -> String {
    p.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_lowercase()
}

/// A listing's error again, to return it (io errors are not `Clone`).
fn same_error(e: &CatalogError) -> CatalogError {
    match e {
        CatalogError::MissingBlob {
            model,
            blob,
            manifest,
        } => CatalogError::MissingBlob {
            model: model.clone(),
            blob: blob.clone(),
            manifest: manifest.clone(),
        },
        other => CatalogError::BadManifest {
            model: other.row_name(),
            path: other.path().map(Path::to_path_buf).unwrap_or_default(),
            message: other.to_string(),
        },
    }
}

/// The card of a file found: its header's, with where it was found, what
/// its owner calls it, and the size of all its parts.
fn card_of(f: &Found) -> Result<ModelCard, CatalogError> {
    let mut card = read_card(&f.path)?;
    let header_named = card.name != escape_inline(&stem_raw(&f.path));
    card.source = f.source;
    card.id = escape_inline(&f.id);
    if !header_named && f.source == Some(Store::Ollama) {
        // An Ollama blob's stem is a digest: say what its owner calls it.
        card.name = escape_inline(f.id.rsplit('/').next().unwrap_or(&f.id));
    }
    if f.parts > 1 {
        card.parts = f.parts;
        card.file_size = stores::parts_of(&f.path, f.parts)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
    }
    Ok(card)
}

/// The file stem of `p` as it is (not lower-cased).
fn stem_raw(p: &Path) -> String {
    p.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
