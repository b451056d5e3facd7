//! Other tools' model stores, read only: the GGUF files Ollama pulled, the
//! Hugging Face hub cache holds, LM Studio downloaded and llama.cpp's `-hf`
//! cached, each under the name its owner knows it by ([`Listed::id`]).
//!
//! Nothing here writes, renames or deletes: a store is listed (directories
//! and Ollama's small JSON manifests), and the cards are read from the GGUF
//! headers by the catalog. A store that cannot be read is one error row
//! ([`CatalogError::Store`]); a store that is not there is empty.

use std::fs;
use std::path::{Path, PathBuf};

use super::CatalogError;

/// Another tool's model store (the config key `sources` lists which are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Store {
    /// Ollama's `models` directory: manifests naming blobs.
    #[serde(rename = "ollama")]
    Ollama,
    /// The Hugging Face hub cache (`huggingface_hub`, `hf download`).
    #[serde(rename = "huggingface")]
    HuggingFace,
    /// LM Studio's models directory.
    #[serde(rename = "lmstudio")]
    LmStudio,
    /// llama.cpp's download cache (`llama-cli -hf`).
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
}

impl Store {
    /// Every store, in the order they are listed.
    pub const ALL: [Store; 4] = [
        Store::Ollama,
        Store::HuggingFace,
        Store::LmStudio,
        Store::LlamaCpp,
    ];

    /// The name in the config key `sources` and in the SOURCE column.
    pub fn label(self) -> &'static str {
        match self {
            Store::Ollama => "ollama",
            Store::HuggingFace => "huggingface",
            Store::LmStudio => "lmstudio",
            Store::LlamaCpp => "llama.cpp",
        }
    }
}

/// One root directory of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDir {
    pub store: Store,
    pub root: PathBuf,
}

/// The directories of `stores`, from the environment (`get`: a variable's
/// value, `None` when unset or empty), as each tool finds its own:
/// - Ollama: `$OLLAMA_MODELS`, else `~/.ollama/models`; and the system
///   service's `/usr/share/ollama/.ollama/models`;
/// - Hugging Face: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
///   `$XDG_CACHE_HOME/huggingface/hub` (`~/.cache` without it);
/// - LM Studio: `~/.lmstudio/models` and the older `~/.cache/lm-studio/models`;
/// - llama.cpp: `$LLAMA_CACHE`, else `$XDG_CACHE_HOME/llama.cpp` (`~/.cache`).
///
/// `~` is `$HOME`; without it, the places under it are left out.
pub fn store_dirs(stores: &[Store], get: impl Fn(&str) -> Option<PathBuf>) -> Vec<StoreDir> {
    let home = get("HOME");
    let under_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
    let cache = get("XDG_CACHE_HOME").or_else(|| under_home(".cache"));
    let mut out = Vec::new();
    for &store in stores {
        let roots: Vec<Option<PathBuf>> = match store {
            Store::Ollama => vec![
                get("OLLAMA_MODELS").or_else(|| under_home(".ollama/models")),
                Some(PathBuf::from("/usr/share/ollama/.ollama/models")),
            ],
            Store::HuggingFace => vec![
                get("HF_HUB_CACHE")
                    .or_else(|| get("HF_HOME").map(|h| h.join("hub")))
                    .or_else(|| cache.as_ref().map(|c| c.join("huggingface/hub"))),
            ],
            Store::LmStudio => vec![
                under_home(".lmstudio/models"),
                under_home(".cache/lm-studio/models"),
            ],
            Store::LlamaCpp => {
                vec![get("LLAMA_CACHE").or_else(|| cache.as_ref().map(|c| c.join("llama.cpp")))]
            }
        };
        for root in roots.into_iter().flatten() {
            let d = StoreDir { store, root };
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// A model file a store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The file to open (the first part of a split model).
    pub path: PathBuf,
    /// What its owner calls it, and what `--model` takes: `name:tag`
    /// (Ollama), `org/repo/file` (hub cache), `publisher/repo/file` (LM
    /// Studio), the file name (llama.cpp's cache, tokenscope's directories).
    pub id: String,
    /// How many files the model is split into (1: not split).
    pub parts: u32,
}

/// The models in `dir` (blocking: lists directories, reads Ollama's
/// manifests; no GGUF file is opened). A root that does not exist is empty;
/// one that cannot be listed is one [`CatalogError::Store`]; an Ollama
/// manifest whose model blob is missing is a [`CatalogError::MissingBlob`].
pub fn list(dir: &StoreDir) -> Vec<Result<Listed, CatalogError>> {
    let unreadable = |path: &Path, source: std::io::Error| CatalogError::Store {
        store: dir.store.label(),
        path: path.to_path_buf(),
        source,
    };
    match fs::metadata(&dir.root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => return vec![Err(unreadable(&dir.root, e))],
        Ok(_) => {}
    }
    let rows = match dir.store {
        Store::Ollama => ollama(&dir.root),
        Store::HuggingFace => hub_cache(&dir.root),
        Store::LmStudio => lm_studio(&dir.root),
        Store::LlamaCpp => flat(&dir.root, ""),
    };
    match rows {
        Ok(v) => v,
        Err((p, e)) => vec![Err(unreadable(&p, e))],
    }
}

/// LM Studio: `<publisher>/<repo>/*.gguf`, named `publisher/repo/file`; a
/// folder that cannot be listed is a row saying so.
fn lm_studio(root: &Path) -> Rows {
    let mut out = Vec::new();
    for publisher in subdirs(root).map_err(|e| (root.to_path_buf(), e))? {
        let repos = subdirs(&publisher).map(|repos| {
            repos
                .into_iter()
                .map(|repo| {
                    let prefix = format!("{}/{}", name_of(&publisher), name_of(&repo));
                    flat(&repo, &prefix)
                })
                .collect::<Vec<_>>()
        });
        let repos = match repos {
            Ok(r) => r,
            Err(e) => vec![Err((publisher.clone(), e))],
        };
        for r in repos {
            match r {
                Ok(v) => out.extend(v),
                Err((path, source)) => out.push(Err(CatalogError::Store {
                    store: Store::LmStudio.label(),
                    path,
                    source,
                })),
            }
        }
    }
    Ok(out)
}

/// The last component of `p`, lossy.
fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The directories directly in `dir` (symlinks to directories too), sorted.
fn subdirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

/// A split model's part: `("Model-Q4", 1, 3)` for `Model-Q4-00001-of-00003.gguf`.
pub(crate) fn split_part(file_name: &str) -> Option<(&str, u32, u32)> {
    let stem = file_name
        .strip_suffix(".gguf")
        .or_else(|| file_name.strip_suffix(".GGUF"))?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, index) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(count) {
        return None;
    }
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index >= 1 && index <= count).then_some((prefix, index, count))
}

/// A multimodal projector (`mmproj-…gguf`, `…-mmproj-f16.gguf`): not a chat model.
pub(crate) fn is_projector(file_name: &str) -> bool {
    file_name.to_ascii_lowercase().contains("mmproj")
}

/// `files` as model rows: projectors left out, a split model once, through
/// its first part (later parts whose first part is missing stay rows of
/// their own: loading them says what is wrong). Each with its part count.
pub(crate) fn models_among(files: Vec<PathBuf>) -> Vec<(PathBuf, u32)> {
    let name = |p: &PathBuf| name_of(p);
    let firsts: Vec<(PathBuf, String)> = files
        .iter()
        .filter_map(|p| {
            let n = name(p);
            let (prefix, index, _) = split_part(&n)?;
            (index == 1).then(|| (p.with_file_name(""), prefix.to_string()))
        })
        .collect();
    files
        .into_iter()
        .filter(|p| !is_projector(&name(p)))
        .filter_map(|p| {
            let n = name(&p);
            match split_part(&n) {
                Some((_, 1, count)) => Some((p, count)),
                Some((prefix, _, _)) => {
                    let first_here = firsts
                        .iter()
                        .any(|(d, f)| *d == p.with_file_name("") && f == prefix);
                    (!first_here).then_some((p, 1))
                }
                None => Some((p, 1)),
            }
        })
        .collect()
}

/// Every part of a split model, from its first part's path and count.
pub(crate) fn parts_of(first: &Path, parts: u32) -> Vec<PathBuf> {
    let n = name_of(first);
    match split_part(&n) {
        Some((prefix, 1, count)) if count == parts => (1..=count)
            .map(|i| first.with_file_name(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
            .collect(),
        _ => vec![first.to_path_buf()],
    }
}

/// The `*.gguf` files directly in `dir` (not directories), sorted.
fn gguf_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
                && !p.is_dir()
        })
        .collect();
    v.sort();
    Ok(v)
}

type Rows = Result<Vec<Result<Listed, CatalogError>>, (PathBuf, std::io::Error)>;

/// The models directly in `dir`, named `prefix/file` (the file alone
/// without a prefix).
fn flat(dir: &Path, prefix: &str) -> Rows {
    let files = gguf_in(dir).map_err(|e| (dir.to_path_buf(), e))?;
    Ok(models_among(files)
        .into_iter()
        .map(|(path, parts)| {
            let file = name_of(&path);
            let id = if prefix.is_empty() {
                file
            } else {
                format!("{prefix}/{file}")
            };
            Ok(Listed { path, id, parts })
        })
        .collect())
}

/// Ollama's layer media type of the model's weights (a GGUF file).
const OLLAMA_MODEL_LAYER: &str = "application/vnd.ollama.image.model";
/// The registry Ollama pulls from when none is named; its `library`
/// namespace is left out of names (`qwen2.5:0.5b`).
const OLLAMA_REGISTRY: &str = "registry.ollama.ai";

/// Ollama: `manifests/<registry>/<namespace>/<name>/<tag>`, each a JSON
/// manifest whose model layer's digest `sha256:<hex>` names the blob
/// `blobs/sha256-<hex>`. Named as `ollama list` names them: `name:tag` in
/// the default registry's `library`, `namespace/name:tag` elsewhere in it,
/// `registry/namespace/name:tag` in another registry (`hf.co/…`).
fn ollama(root: &Path) -> Rows {
    let manifests = root.join("manifests");
    let registries = match subdirs(&manifests) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.is_dir() => {
            return Ok(Vec::new());
        }
        Err(e) => return Err((manifests, e)),
    };
    let mut out = Vec::new();
    for registry in registries {
        for namespace in subdirs(&registry).map_err(|e| (registry.clone(), e))? {
            for model in subdirs(&namespace).map_err(|e| (namespace.clone(), e))? {
                let mut tags: Vec<PathBuf> = fs::read_dir(&model)
                    .map_err(|e| (model.clone(), e))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect();
                tags.sort();
                for tag in tags {
                    let (reg, ns) = (name_of(&registry), name_of(&namespace));
                    let short = format!("{}:{}", name_of(&model), name_of(&tag));
                    let id = match (reg.as_str(), ns.as_str()) {
                        (OLLAMA_REGISTRY, "library") => short,
                        (OLLAMA_REGISTRY, _) => format!("{ns}/{short}"),
                        _ => format!("{reg}/{ns}/{short}"),
                    };
                    if let Some(row) = ollama_model(root, &tag, id) {
                        out.push(row);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The model of one Ollama manifest; `None` for a manifest without a model
/// layer (nothing to chat with).
fn ollama_model(root: &Path, manifest: &Path, id: String) -> Option<Result<Listed, CatalogError>> {
    let bad = |message: String| {
        Some(Err(CatalogError::BadManifest {
            model: id.clone(),
            path: manifest.to_path_buf(),
            message,
        }))
    };
    let text = match fs::read_to_string(manifest) {
        Ok(t) => t,
        Err(e) => return bad(e.to_string()),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => return bad(format!("not JSON ({e})")),
    };
    let Some(layers) = json.get("layers").and_then(|l| l.as_array()) else {
        return bad("it has no \"layers\" list".into());
    };
    let layer = layers
        .iter()
        .find(|l| l.get("mediaType").and_then(|m| m.as_str()) == Some(OLLAMA_MODEL_LAYER))?;
    let digest = layer.get("digest").and_then(|d| d.as_str()).unwrap_or("");
    let Some(hex) = digest
        .strip_prefix("sha256:")
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return bad(format!(
            "its model layer's digest {digest:?} is not sha256:<hex>"
        ));
    };
    let blob = root.join("blobs").join(format!("sha256-{hex}"));
    if !blob.exists() {
        return Some(Err(CatalogError::MissingBlob {
            model: id,
            blob,
            manifest: manifest.to_path_buf(),
        }));
    }
    Some(Ok(Listed {
        path: blob,
        id,
        parts: 1,
    }))
}

/// The hub cache: `models--<org>--<repo>/snapshots/<rev>/**/*.gguf`, named
/// `org/repo/path-in-repo`; the revision `refs/main` names first, then the
/// others newest first, each file once (by its path in the repository).
fn hub_cache(root: &Path) -> Rows {
    let mut out = Vec::new();
    for repo in subdirs(root).map_err(|e| (root.to_path_buf(), e))? {
        let dir_name = name_of(&repo);
        let Some(rest) = dir_name.strip_prefix("models--") else {
            continue; // datasets--…, spaces--…, .locks
        };
        let name = rest.replace("--", "/");
        let snapshots = repo.join("snapshots");
        let mut revs = match subdirs(&snapshots) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.push(Err(CatalogError::Store {
                    store: Store::HuggingFace.label(),
                    path: snapshots,
                    source: e,
                }));
                continue;
            }
        };
        let main = fs::read_to_string(repo.join("refs").join("main"))
            .ok()
            .map(|s| s.trim().to_string());
        let modified = |p: &PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
        revs.sort_by_key(|r| (Some(name_of(r)) != main, std::cmp::Reverse(modified(r))));
        let mut seen: Vec<String> = Vec::new();
        for rev in revs {
            let mut files = Vec::new();
            walk_gguf(&rev, 0, &mut files);
            for (path, parts) in models_among(files) {
                let rel = path
                    .strip_prefix(&rev)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if seen.contains(&rel) {
                    continue;
                }
                seen.push(rel.clone());
                out.push(Ok(Listed {
                    path,
                    id: format!("{name}/{rel}"),
                    parts,
                }));
            }
        }
    }
    Ok(out)
}

/// Folders a hub snapshot is walked into (repositories keep quantizations
/// in a folder each, seldom deeper).
const MAX_DEPTH: usize = 4;

/// The `*.gguf` files below `dir` (real directories only: a symlinked
/// directory could loop), sorted.
fn walk_gguf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<fs::DirEntry> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let real_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if real_dir {
            if depth < MAX_DEPTH {
                walk_gguf(&p, depth + 1, out);
            }
        } else if p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
        {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parts_are_read_from_the_name() {
        assert_eq!(
            split_part("Qwen-Q4_K_M-00001-of-00003.gguf"),
            Some(("Qwen-Q4_K_M", 1, 3))
        );
        assert_eq!(split_part("m-00003-of-00003.gguf"), Some(("m", 3, 3)));
        assert_eq!(split_part("m-00004-of-00003.gguf"), None);
        assert_eq!(split_part("m-1-of-3.gguf"), None);
        assert_eq!(split_part("m.gguf"), None);
        let files = [
            "a-00001-of-00002.gguf",
            "a-00002-of-00002.gguf",
            "b-00002-of-00002.gguf",
            "mmproj-a-f16.gguf",
            "c.gguf",
        ]
        .map(|f| PathBuf::from("/d").join(f))
        .to_vec();
        let names: Vec<(String, u32)> = models_among(files)
            .into_iter()
            .map(|(p, n)| (name_of(&p), n))
            .collect();
        assert_eq!(
            names,
            [
                ("a-00001-of-00002.gguf".to_string(), 2),
                ("b-00002-of-00002.gguf".to_string(), 1),
                ("c.gguf".to_string(), 1)
            ]
        );
        assert_eq!(
            parts_of(Path::new("/d/a-00001-of-00002.gguf"), 2),
            [
                PathBuf::from("/d/a-00001-of-00002.gguf"),
                PathBuf::from("/d/a-00002-of-00002.gguf")
            ]
        );
    }

    #[test]
    fn store_dirs_follow_each_tools_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        let roots = |d: Vec<StoreDir>| -> Vec<(String, PathBuf)> {
            d.into_iter()
                .map(|s| (s.store.label().to_string(), s.root))
                .collect()
        };
        let p = PathBuf::from;
        assert_eq!(
            roots(store_dirs(&Store::ALL, env(&[("HOME", "/h")]))),
            [
                ("ollama".into(), p("/h/.ollama/models")),
                ("ollama".into(), p("/usr/share/ollama/.ollama/models")),
                ("huggingface".into(), p("/h/.cache/huggingface/hub")),
                ("lmstudio".into(), p("/h/.lmstudio/models")),
                ("lmstudio".into(), p("/h/.cache/lm-studio/models")),
                ("llama.cpp".into(), p("/h/.cache/llama.cpp")),
            ]
        );
        let set = env(&[
            ("HOME", "/h"),
            ("OLLAMA_MODELS", "/o"),
            ("HF_HOME", "/hf"),
            ("LLAMA_CACHE", "/l"),
        ]);
        let d = roots(store_dirs(
            &[Store::Ollama, Store::HuggingFace, Store::LlamaCpp],
            set,
        ));
        assert_eq!(d[0].1, p("/o"));
        assert_eq!(d[2].1, p("/hf/hub"));
        assert_eq!(d[3].1, p("/l"));
        let hub = env(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/hf")]);
        assert_eq!(roots(store_dirs(&[Store::HuggingFace], hub))[0].1, p("/c"));
        assert!(store_dirs(&[Store::LmStudio], env(&[])).is_empty());
    }
}
