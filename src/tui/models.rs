//! The picker's view of the models: on disk, and those the configured
//! servers list ([`remote_entries`]).
//!
//! Thin adapter: the picker only needs a few display fields per file, so the
//! catalog's cards (or errors) are turned into [`ModelEntry`] rows here, the
//! variants of one model listed together ([`group_variants`]).

use std::path::{Path, PathBuf};

use crate::catalog::{self, CatalogError, ModelCard};
use crate::engine::ModelRef;
use crate::i18n::tr_args;
use crate::tensor_map::KindShare;

/// One row of the model picker.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// What Enter loads: the file, or the server's model.
    pub model: ModelRef,
    pub file_name: String,
    pub name: String,
    /// Where it was found, in a word: "tokenscope" (its own directories),
    /// "ollama", "huggingface", "lmstudio", "llama.cpp"; empty for a
    /// server's model (its name says which server).
    pub source: String,
    /// What its owner calls it (`qwen2.5:0.5b`, `org/repo/file`; the file
    /// name in tokenscope's directories): see [`ModelCard::id`].
    pub id: String,
    pub arch: String,
    /// Human-readable parameter count ("270M"), empty when unknown.
    pub params: String,
    /// The declared type (`general.file_type`, "Q4_K_M").
    pub quant: String,
    /// The type as shown: [`ModelCard::quant_label`] ("Q2_K requested ·
    /// mostly Q4_0"); empty: `quant`.
    pub label: String,
    /// Human-readable file size ("241 MB").
    pub size: String,
    pub chat_template: bool,
    /// The header could not be read: why.
    pub error: Option<String>,
    /// Variants of one model share this key; `None` when unknown.
    pub group: Option<catalog::VariantKey>,
    /// Bits per weight ([`catalog::bits_per_weight`]: tensor data × 8 /
    /// weights, as `quantize` prints it).
    pub bpw: Option<f64>,
    /// Made by `tokenscope quantize` from another file (recorded in it): not
    /// the original of its variants.
    pub derived: bool,
    /// The tensor map's kinds ([`catalog::TensorMix::kinds`]); empty when unknown.
    pub kinds: Vec<KindShare>,
    /// No `output` tensor: the head is tied to the embedding.
    pub tied_output: bool,
    /// The file's size in bytes (0 when unknown).
    pub file_bytes: u64,
}

/// An empty row (its model an empty path): the rows made here fill it in.
impl Default for ModelEntry {
    fn default() -> Self {
        Self {
            model: ModelRef::Local(PathBuf::new()),
            file_name: String::new(),
            name: String::new(),
            source: String::new(),
            id: String::new(),
            arch: String::new(),
            params: String::new(),
            quant: String::new(),
            label: String::new(),
            size: String::new(),
            chat_template: false,
            error: None,
            group: None,
            bpw: None,
            derived: false,
            kinds: Vec::new(),
            tied_output: false,
            file_bytes: 0,
        }
    }
}

impl ModelEntry {
    /// The type as shown (see [`ModelEntry::label`]).
    pub(crate) fn quant_shown(&self) -> &str {
        if self.label.is_empty() {
            &self.quant
        } else {
            &self.label
        }
    }

    /// Whether every word of `filter` occurs (case-insensitively) in the row.
    pub fn matches(&self, filter: &str) -> bool {
        let hay = format!(
            "{} {} {} {} {} {} {}",
            self.name,
            self.file_name,
            self.source,
            self.id,
            self.arch,
            self.quant_shown(),
            self.params
        )
        .to_lowercase();
        filter
            .to_lowercase()
            .split_whitespace()
            .all(|w| hay.contains(w))
    }
}

impl From<&ModelCard> for ModelEntry {
    fn from(c: &ModelCard) -> Self {
        Self {
            model: ModelRef::Local(c.path.clone()),
            file_name: c.file_name.clone(),
            name: c.name.clone(),
            source: c.source.map_or("tokenscope", catalog::Store::label).into(),
            id: c.id.clone(),
            arch: c.arch.clone(),
            params: c.params_human(),
            quant: c.quant.clone(),
            label: c.quant_label(),
            size: c.size_human(),
            chat_template: c.has_chat_template(),
            error: None,
            group: c.variant_key(),
            bpw: c.bits_per_weight(),
            derived: c.made_from.is_some(),
            kinds: c.mix.kinds.clone(),
            tied_output: c.mix.tied_output,
            file_bytes: c.file_size,
        }
    }
}

/// A file the catalog could not read: shown in the picker with the reason.
fn failed_entry(e: &CatalogError) -> ModelEntry {
    let path = e.path().map(Path::to_path_buf).unwrap_or_default();
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The error names the path itself; keep only the reason.
    let text = e.to_string();
    let reason = text
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(&text)
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    ModelEntry {
        name: file_name.trim_end_matches(".gguf").to_string(),
        file_name: e.row_name(),
        model: ModelRef::Local(path),
        error: Some(reason),
        ..ModelEntry::default()
    }
}

/// Finds the models in `places` (blocking: reads directories and GGUF
/// headers; the TUI calls it on a thread of its own), variants of one model
/// together ([`group_variants`]).
pub fn discover(places: &catalog::Places) -> Vec<ModelEntry> {
    group_variants(
        places
            .discover()
            .iter()
            .map(|r| match r {
                Ok(card) => ModelEntry::from(card),
                Err(e) => failed_entry(e),
            })
            .collect(),
    )
}

/// The entries with the variants of one model (same [`ModelEntry::group`])
/// together, where the first of them was: the originals first (files not
/// made by `tokenscope quantize` from another: a requantized Q8_0 is larger
/// than the Q4_1 it was made from, yet not its original), then the files
/// made from them, each part largest bits per weight first; entries without
/// a group stay where they are relative to the groups.
pub(crate) fn group_variants(entries: Vec<ModelEntry>) -> Vec<ModelEntry> {
    let mut first: Vec<Option<catalog::VariantKey>> = Vec::new();
    let rank: Vec<usize> = entries
        .iter()
        .map(|e| match &e.group {
            None => {
                first.push(None);
                first.len() - 1
            }
            Some(g) => match first.iter().position(|f| f.as_ref() == Some(g)) {
                Some(p) => p,
                None => {
                    first.push(Some(g.clone()));
                    first.len() - 1
                }
            },
        })
        .collect();
    let mut keyed: Vec<(usize, ModelEntry)> = rank.into_iter().zip(entries).collect();
    keyed.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb)
            .then_with(|| a.derived.cmp(&b.derived))
            .then_with(|| b.bpw.unwrap_or(0.0).total_cmp(&a.bpw.unwrap_or(0.0)))
    });
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// What a model being loaded (or failing to load) is called: a file of
/// another tool's store by what that tool calls it (`qwen2.5:0.5b`, not the
/// blob's digest; found among `entries`), another file by its name, a
/// server's model by [`display_name`], none named: `the model of URL`.
pub(crate) fn load_name(model: &ModelRef, entries: &[ModelEntry]) -> String {
    let from_store = entries.iter().find(|e| {
        e.model == *model && e.error.is_none() && !matches!(e.source.as_str(), "" | "tokenscope")
    });
    if let Some(e) = from_store {
        return e.id.clone();
    }
    match model {
        ModelRef::Remote { url, model } if model.is_empty() => {
            tr_args("picker-model-of", "the model of { $url }", &[("url", url)])
        }
        ModelRef::Remote { model, .. } => crate::engine::remote::display_name(model),
        ModelRef::Local(path) => path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    }
}

/// The models each server lists, as picker rows marked remote (blocking:
/// asks each server); a server that cannot be asked is one row saying why.
pub(crate) fn remote_entries(
    servers: &[(String, Result<crate::engine::remote::RemoteTarget, String>)],
) -> Vec<ModelEntry> {
    use crate::engine::remote::{display_name, list_models};
    let mut out = Vec::new();
    for (name, target) in servers {
        let ids = target
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| list_models(t).map_err(|e| e.to_string()));
        match ids {
            Ok(ids) => out.extend(ids.iter().map(|id| ModelEntry {
                model: ModelRef::Remote {
                    url: target.as_ref().expect("listed").url.clone(),
                    model: id.clone(),
                },
                file_name: id.clone(),
                name: format!("{} @ {name}", display_name(id)),
                arch: "remote".into(),
                chat_template: true,
                ..ModelEntry::default()
            })),
            Err(e) => out.push(ModelEntry {
                // Enter on it: a server named by its URL (`--server`, not
                // configured) is asked again for its only model; another
                // is a name no file has (it fails to load, as an
                // unreadable file does).
                model: match target {
                    Ok(t) if t.url == *name => ModelRef::Remote {
                        url: t.url.clone(),
                        model: String::new(),
                    },
                    _ => ModelRef::Local(PathBuf::from(format!("{name}#"))),
                },
                file_name: tr_args("picker-server", "server { $name }", &[("name", name)]),
                name: tr_args("picker-server", "server { $name }", &[("name", name)]),
                arch: "remote".into(),
                error: Some(e),
                ..ModelEntry::default()
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variant key (a vocabulary of 49152 tokens).
    fn key(arch: &str, millions: u64) -> catalog::VariantKey {
        catalog::VariantKey {
            arch: arch.into(),
            n_params: millions * 1_000_000,
            n_vocab: 49_152,
        }
    }

    #[test]
    fn a_store_model_loads_under_its_owners_name() {
        let blob = ModelRef::Local(PathBuf::from("/o/blobs/sha256-1d96"));
        let mut e = ModelEntry {
            model: blob.clone(),
            source: "ollama".into(),
            id: "qwen2.5-coder:0.5b".into(),
            ..Default::default()
        };
        assert_eq!(
            load_name(&blob, std::slice::from_ref(&e)),
            "qwen2.5-coder:0.5b"
        );
        e.source = "tokenscope".into();
        assert_eq!(load_name(&blob, &[e]), "sha256-1d96");
        assert_eq!(load_name(&blob, &[]), "sha256-1d96");
    }

    #[test]
    fn filter_matches_all_words() {
        let e = ModelEntry {
            name: "Gemma 3 270M".into(),
            file_name: "gemma-3-270m-Q8_0.gguf".into(),
            arch: "gemma3".into(),
            quant: "Q8_0".into(),
            ..Default::default()
        };
        assert!(e.matches("gem q8"));
        assert!(e.matches(""));
        assert!(!e.matches("qwen"));
    }

    #[test]
    fn the_original_of_a_group_comes_before_the_files_made_from_it() {
        let e = |file: &str, bpw: f64, derived: bool| ModelEntry {
            file_name: file.into(),
            group: Some(key("llama", 135)),
            bpw: Some(bpw),
            derived,
            ..Default::default()
        };
        let sorted = group_variants(vec![
            e("smol-q2_k", 5.1, true),
            e("smol-q8_0", 8.5, true),
            e("smol-q4_1", 5.2, false),
            e("smol-f16", 16.0, true),
        ]);
        let names: Vec<&str> = sorted.iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["smol-q4_1", "smol-f16", "smol-q8_0", "smol-q2_k"]);
    }

    #[test]
    fn variants_of_one_model_come_together_largest_first() {
        let e = |file: &str, group: Option<(&str, u64)>, bpw: f64| ModelEntry {
            file_name: file.into(),
            group: group.map(|(arch, m)| key(arch, m)),
            bpw: Some(bpw),
            ..Default::default()
        };
        let sorted = group_variants(vec![
            e("a-q4", Some(("llama", 135)), 5.0),
            e("b-q4", Some(("gemma", 270)), 4.9),
            e("broken", None, 0.0),
            e("a-q2", Some(("llama", 135)), 3.0),
            e("a-f16", Some(("llama", 135)), 16.0),
            e("b-q8", Some(("gemma", 270)), 8.5),
        ]);
        let names: Vec<&str> = sorted.iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["a-f16", "a-q4", "a-q2", "b-q8", "b-q4", "broken"]);
    }

    #[test]
    fn discovers_gguf_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.gguf"), b"not a gguf").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let found = discover(&catalog::Places::own(vec![
            dir.path().to_path_buf(),
            dir.path().join("missing"),
        ]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].file_name, "b.gguf");
        assert_eq!(found[0].model, ModelRef::Local(dir.path().join("b.gguf")));
        let err = found[0]
            .error
            .as_deref()
            .expect("unreadable header is an error row");
        assert!(!err.is_empty());
    }
}
