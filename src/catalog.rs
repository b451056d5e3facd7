//! Finds GGUF files and reads their headers into [`ModelCard`]s, without loading
//! the model (see [`crate::gguf`]): the tensor types the file really holds
//! ([`TensorMix`]), which files are variants of one model ([`VariantKey`]),
//! what `tokenscope quantize` made it from ([`MadeFrom`]); and the card's
//! numbers and chat template in words (sizes, parameters,
//! [`template_preview`]) for every front end.

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::gguf::{self, GgmlType, GgufError, GgufHeader, GgufValue};
use crate::tensor_map::{KindShare, TensorMap};
use crate::text::escape_inline;

mod names;
mod places;
mod stores;

pub use places::Places;
pub use stores::{Listed, Store, StoreDir, store_dirs};

/// Strings longer than this are cut in [`ModelCard::metadata`].
const MAX_RENDERED_VALUE: usize = 80;

/// What a GGUF file's header says about the model, ready to show.
///
/// Text read from the file is sanitized once, here ([`ModelCard::from_header`]),
/// with [`crate::text::escape_inline`]: `name`, `arch`, `file_name` and every
/// metadata key and value hold escaped text (`␛[31m`, `<U+202E>`), safe for a
/// terminal, the TUI and JSON output alike (JSON consumers get the escaped text
/// too). Only `path` (to open the file) and `chat_template` (to render it) stay
/// raw: print the template through [`template_preview`], which escapes it,
/// and JSON through [`crate::text::json_safe`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelCard {
    /// The file, as found (not escaped: it is opened by this path).
    pub path: PathBuf,
    /// The file name, escaped.
    pub file_name: String,
    /// The model's name from its header ([`names::display_name`]:
    /// `general.basename`, `general.size_label` and `general.finetune` as
    /// "Qwen2.5 Coder 0.5B Instruct", else a short `general.name`), else
    /// what its owner calls the file ([`ModelCard::id`]'s last part, the
    /// file stem); escaped.
    pub name: String,
    /// Where the file was found: `None` in tokenscope's own directories
    /// (the models directory and `models_dir`), else the other tool's store.
    pub source: Option<Store>,
    /// What `--model` takes to load exactly this file and what its owner
    /// calls it: the file name in tokenscope's directories, `name:tag` in
    /// Ollama's store, `org/repo/file` in the hub cache, … (see
    /// [`Listed::id`]); escaped.
    pub id: String,
    /// The name tokenscope gave the file before [`ModelCard::name`] was
    /// built from the header's parts: `general.name` when at most 24
    /// characters, else the file stem; escaped. Saved replies recorded the
    /// name of their model, so they are matched by this one too.
    #[serde(skip)]
    pub former_name: String,
    /// How many files the model is split into (`-00001-of-00003.gguf`: 3);
    /// `path` is the first, `file_size` counts them all. 1: not split.
    pub parts: u32,
    /// `general.architecture`, escaped.
    pub arch: String,
    pub n_params: u64,
    pub file_size: u64,
    /// From `general.file_type` (e.g. "Q4_K_M"), else the most common tensor type.
    pub quant: String,
    /// `{arch}.block_count`
    pub n_layer: u32,
    /// `{arch}.context_length`
    pub n_ctx_train: u32,
    /// Length of `tokenizer.ggml.tokens`.
    pub n_vocab: u32,
    /// `tokenizer.chat_template`, in full and raw (it is rendered, not shown).
    pub chat_template: Option<String>,
    /// Every key/value in file order, escaped and rendered short: arrays as
    /// `[type; len]`, long strings truncated.
    pub metadata: Vec<(String, String)>,
    /// The tensor types the file really holds, from its tensor table: `quant`
    /// is only what was asked of the quantizer (see [`ModelCard::quant_label`]).
    pub mix: TensorMix,
    /// The file `tokenscope quantize` made this one from, as it recorded it
    /// in the file (`tokenscope.quantized_from.*`); `None` for files made elsewhere.
    pub made_from: Option<MadeFrom>,
}

/// The tensors of one ggml type in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TypeShare {
    /// The ggml type's name ("Q4_0", "F32"; "type 99" for one this reader does not know).
    pub ty: String,
    /// How many tensors have this type.
    pub tensors: usize,
    /// Weights (elements) they hold.
    pub weights: u64,
    /// Bytes of their data (0 for an unknown type).
    pub bytes: u64,
}

/// Weight matrices whose rows do not divide into the blocks of the main
/// tensor type of the file's declared type (rows of 576 weights against
/// Q4_K's blocks of 256): llama.cpp wrote them as another type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Misfit {
    /// The main tensor type of the declared type ("Q4_K" for Q4_K_M).
    pub main: String,
    /// Its block size, in weights.
    pub block: u64,
    /// How many weight matrices (tensors of two or more dimensions) do not fit…
    pub tensors: usize,
    /// …of this many.
    pub of: usize,
    /// Their row widths (first dimension, in weights), smallest first, each once.
    pub widths: Vec<u64>,
}

/// What a file's tensors really are.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct TensorMix {
    /// One entry per ggml type, the one holding the most weights first.
    pub types: Vec<TypeShare>,
    /// Weight matrices that cannot take the declared type's main tensor type.
    pub misfit: Option<Misfit>,
    /// The tensor map's summary: one entry per kind of tensor (embedding,
    /// attention, feed-forward, norms, output head), all layers together
    /// ([`crate::tensor_map`]).
    pub kinds: Vec<KindShare>,
    /// No `output` tensor: the output head is the embedding matrix (tied).
    pub tied_output: bool,
}

impl TensorMix {
    /// The make-up of the tensors of `h`; `quant` is the declared type
    /// (`general.file_type`'s name), whose main tensor type the rows are checked against.
    pub fn of(h: &GgufHeader, quant: &str) -> TensorMix {
        let mut types: Vec<TypeShare> = Vec::new();
        for t in &h.tensors {
            let name = t.ggml_type.name();
            let at = match types.iter().position(|s| s.ty == name) {
                Some(i) => i,
                None => {
                    types.push(TypeShare {
                        ty: name,
                        tensors: 0,
                        weights: 0,
                        bytes: 0,
                    });
                    types.len() - 1
                }
            };
            let s = &mut types[at];
            s.tensors += 1;
            s.weights += t.n_elements;
            s.bytes += t.n_bytes.unwrap_or(0);
        }
        types.sort_by(|a, b| b.weights.cmp(&a.weights).then_with(|| a.ty.cmp(&b.ty)));
        let misfit = main_tensor_type(quant)
            .and_then(GgmlType::from_name)
            .and_then(|main| {
                let (block, _) = main.block()?;
                let matrices: Vec<u64> = h
                    .tensors
                    .iter()
                    .filter(|t| t.dims.len() >= 2)
                    .map(|t| t.dims[0])
                    .collect();
                let mut widths: Vec<u64> = matrices
                    .iter()
                    .copied()
                    .filter(|w| w % block != 0)
                    .collect();
                let tensors = widths.len();
                widths.sort_unstable();
                widths.dedup();
                (tensors > 0).then(|| Misfit {
                    main: main.name(),
                    block,
                    tensors,
                    of: matrices.len(),
                    widths,
                })
            });
        let map = TensorMap::of(h);
        TensorMix {
            types,
            misfit,
            kinds: map.kinds(),
            tied_output: map.tied_output(),
        }
    }

    /// All weights (elements) of the file.
    pub fn weights(&self) -> u64 {
        self.types.iter().map(|s| s.weights).sum()
    }

    /// All bytes of tensor data (no header, no padding).
    pub fn bytes(&self) -> u64 {
        self.types.iter().map(|s| s.bytes).sum()
    }

    /// Whether two files hold the same tensor types: the same number of
    /// tensors and weights of each type (so the same bytes too).
    pub(crate) fn same_as(&self, other: &TensorMix) -> bool {
        let key = |m: &TensorMix| {
            let mut v: Vec<(String, usize, u64)> = m
                .types
                .iter()
                .map(|s| (s.ty.clone(), s.tensors, s.weights))
                .collect();
            v.sort();
            v
        };
        !self.types.is_empty() && key(self) == key(other)
    }

    /// "Q4_0 180 · Q3_K 30 · F32 61 · Q8_0 1": the tensor count of each type,
    /// most weights first.
    #[cfg(test)]
    pub fn counts(&self) -> String {
        self.types
            .iter()
            .map(|s| format!("{} {}", s.ty, s.tensors))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// What the variants of one model (its quantizations) have in common: the
/// architecture, the parameter count and the vocabulary size. Two files with
/// one key hold the same model at different precisions (as far as the
/// header can tell: the engine checks the vocabularies token by token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantKey {
    /// `general.architecture` ("llama").
    pub arch: String,
    /// Weights, all tensors together.
    pub n_params: u64,
    /// Tokens in the vocabulary.
    pub n_vocab: u32,
}

impl VariantKey {
    /// The key of a model of architecture `arch` with `n_params` weights
    /// and `n_vocab` tokens; `None` when either count is unknown (0).
    pub fn of(arch: &str, n_params: u64, n_vocab: u32) -> Option<VariantKey> {
        (n_params > 0 && n_vocab > 0).then(|| VariantKey {
            arch: arch.to_string(),
            n_params,
            n_vocab,
        })
    }
}

/// Where `tokenscope quantize` made a file from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MadeFrom {
    /// The input's file name, escaped.
    pub file: String,
    /// The input's type, as [`ModelCard::quant_label`] wrote it then; escaped.
    pub quant: String,
}

/// The metadata key `tokenscope quantize` records its input's file name under.
pub(crate) const KEY_MADE_FROM_FILE: &str = "tokenscope.quantized_from.file";
/// The metadata key `tokenscope quantize` records its input's type under.
pub(crate) const KEY_MADE_FROM_TYPE: &str = "tokenscope.quantized_from.type";

pub use crate::tensor_map::bits_per_weight;

/// The tensor type llama.cpp writes most of for a declared type (its
/// `llama_ftype_get_default_type`): "Q4_K" for Q4_K_M, "IQ3_S" for IQ3_M;
/// `None` for a name it does not know.
pub(crate) fn main_tensor_type(quant: &str) -> Option<&'static str> {
    Some(match quant {
        "F32" => "F32",
        "F16" => "F16",
        "BF16" => "BF16",
        "Q4_0" => "Q4_0",
        "Q4_1" => "Q4_1",
        "Q5_0" => "Q5_0",
        "Q5_1" => "Q5_1",
        "Q8_0" => "Q8_0",
        "Q2_K" | "Q2_K_S" => "Q2_K",
        "Q3_K_S" | "Q3_K_M" | "Q3_K_L" => "Q3_K",
        "Q4_K_S" | "Q4_K_M" => "Q4_K",
        "Q5_K_S" | "Q5_K_M" => "Q5_K",
        "Q6_K" => "Q6_K",
        "IQ2_XXS" => "IQ2_XXS",
        "IQ2_XS" | "IQ2_S" => "IQ2_XS",
        "IQ2_M" => "IQ2_S",
        "IQ3_XXS" => "IQ3_XXS",
        "IQ3_XS" | "IQ3_S" | "IQ3_M" => "IQ3_S",
        "IQ1_S" => "IQ1_S",
        "IQ1_M" => "IQ1_M",
        "IQ4_NL" => "IQ4_NL",
        "IQ4_XS" => "IQ4_XS",
        "TQ1_0" => "TQ1_0",
        "TQ2_0" => "TQ2_0",
        "MXFP4_MOE" => "MXFP4",
        _ => return None,
    })
}

impl ModelCard {
    pub fn has_chat_template(&self) -> bool {
        self.chat_template
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    }

    /// "135M", "268M", "1.2B".
    pub fn params_human(&self) -> String {
        params_human(self.n_params)
    }

    /// "93.8 MiB".
    pub fn size_human(&self) -> String {
        size_human(self.file_size)
    }

    /// Bits per weight of the file ([`bits_per_weight`]: tensor data only).
    pub fn bits_per_weight(&self) -> Option<f64> {
        bits_per_weight(self.mix.bytes(), self.mix.weights())
    }

    /// The tensor type holding most of the weights, when it is not the one
    /// the declared type stands for (a Q2_K file that is mostly Q4_0,
    /// because its rows do not fit Q2_K's blocks); `None` when it is, or
    /// when the declared type is not one llama.cpp names.
    pub fn mostly(&self) -> Option<&str> {
        let main = main_tensor_type(&self.quant)?;
        let top = self.mix.types.first()?;
        (top.ty != main).then_some(top.ty.as_str())
    }

    /// The type as shown everywhere: "Q4_1", or "Q2_K requested · mostly
    /// Q4_0" when the file is mostly another type than the one asked for.
    pub(crate) fn quant_label(&self) -> String {
        match self.mostly() {
            Some(top) => crate::i18n::tr_args(
                "catalog-quant-mostly",
                "{ $quant } requested · mostly { $top }",
                &[("quant", &self.quant), ("top", &top)],
            ),
            None => self.quant.clone(),
        }
    }

    /// Variants of one model (quantizations of it) share this key;
    /// `None` when the parameter count or the vocabulary is unknown.
    pub(crate) fn variant_key(&self) -> Option<VariantKey> {
        VariantKey::of(&self.arch, self.n_params, self.n_vocab)
    }

    /// Builds the card from a parsed header, escaping the file's text (see
    /// [`ModelCard`]).
    pub(crate) fn from_header(path: &Path, h: &GgufHeader) -> ModelCard {
        let file_name = path
            .file_name()
            .map(|n| escape_inline(&n.to_string_lossy()))
            .unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Raw for the lookups below (`{arch}.block_count`), escaped on the card.
        let arch = h.get_str("general.architecture").unwrap_or("unknown");
        let u32_key = |key: String| {
            h.get_u64(&key)
                .map(|v| v.min(u32::MAX as u64) as u32)
                .unwrap_or(0)
        };
        let n_vocab = h
            .get("tokenizer.ggml.tokens")
            .and_then(GgufValue::array_len)
            .or_else(|| h.get_u64(&format!("{arch}.vocab_size")))
            .map(|v| v.min(u32::MAX as u64) as u32)
            .unwrap_or(0);
        let quant = h
            .get_u64("general.file_type")
            .and_then(|t| u32::try_from(t).ok())
            .and_then(ftype_name)
            .map(str::to_string)
            .or_else(|| h.dominant_type().map(|t| t.name()))
            .unwrap_or_else(|| "unknown".to_string());
        let made_from = h.get_str(KEY_MADE_FROM_FILE).map(|file| MadeFrom {
            file: escape_inline(file),
            quant: escape_inline(h.get_str(KEY_MADE_FROM_TYPE).unwrap_or("unknown")),
        });
        ModelCard {
            mix: TensorMix::of(h, &quant),
            made_from,
            path: path.to_path_buf(),
            file_name,
            name: names::display_name(h, &stem)
                .map(|n| escape_inline(&n))
                .unwrap_or_else(|| escape_inline(&stem)),
            source: None,
            id: String::new(),
            former_name: escape_inline(names::former_name(h).unwrap_or(&stem)),
            parts: 1,
            n_layer: u32_key(format!("{arch}.block_count")),
            n_ctx_train: u32_key(format!("{arch}.context_length")),
            arch: escape_inline(arch),
            n_params: h.n_params(),
            file_size: h.file_size,
            quant,
            n_vocab,
            chat_template: h.get_str("tokenizer.chat_template").map(str::to_string),
            metadata: h
                .metadata
                .iter()
                .map(|(k, v)| (escape_inline(k), render_value(v)))
                .collect(),
        }
    }
}

/// A value on one short line: arrays as `[type; len]`, strings escaped (with
/// [`escape_inline`]) and cut.
pub(crate) fn render_value(v: &GgufValue) -> String {
    match v {
        GgufValue::String(s) => {
            let escaped = escape_inline(s);
            match escaped.char_indices().nth(MAX_RENDERED_VALUE) {
                Some((cut, _)) => format!("{}… ({} bytes)", &escaped[..cut], s.len()),
                None => escaped,
            }
        }
        other => other.to_string(),
    }
}

/// The llama.cpp `llama_ftype` name of `general.file_type` (the "guessed" flag ignored).
pub(crate) fn ftype_name(ftype: u32) -> Option<&'static str> {
    Some(match ftype & !1024 {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// "135M", "268M", "1.2B", "12B".
pub fn params_human(n: u64) -> String {
    let f = n as f64;
    if n < 1_000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.0}K", f / 1e3)
    } else if n < 10_000_000 {
        format!("{:.1}M", f / 1e6)
    } else if n < 999_500_000 {
        format!("{:.0}M", f / 1e6)
    } else if n < 99_950_000_000 {
        format!("{:.1}B", f / 1e9)
    } else {
        format!("{:.0}B", f / 1e9)
    }
}

/// "512 B", "93.8 MiB", "1.2 GiB".
pub fn size_human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[derive(Debug, Error)]
pub enum CatalogError {
    NotFound {
        path: PathBuf,
    },
    DanglingLink {
        path: PathBuf,
        target: PathBuf,
    },
    IsDirectory {
        path: PathBuf,
    },
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Gguf {
        path: PathBuf,
        source: GgufError,
    },
    /// Another tool's store (or a folder in it) that cannot be listed.
    Store {
        store: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An Ollama manifest whose model layer's blob is not in `blobs/`.
    MissingBlob {
        model: String,
        blob: PathBuf,
        manifest: PathBuf,
    },
    /// An Ollama manifest that cannot be read as one.
    BadManifest {
        model: String,
        path: PathBuf,
        message: String,
    },
    NoMatch {
        query: String,
        searched: String,
        available: String,
    },
    Ambiguous {
        query: String,
        matches: String,
    },
}
impl std::fmt::Display for CatalogError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            CatalogError::NotFound { path } => crate::i18n::tr_args(
                "catalog-not-found",
                "model file { $path } does not exist: check the path, or run `tokenscope fetch-demos` to get the demo models",
                &[("path", &path.display())],
            ),
            CatalogError::DanglingLink { path, target } => crate::i18n::tr_args(
                "catalog-dangling-link",
                "{ $path } is a symbolic link to { $target }, which does not exist: fix or remove the link",
                &[("path", &path.display()), ("target", &target.display())],
            ),
            CatalogError::IsDirectory { path } => crate::i18n::tr_args(
                "catalog-is-directory",
                "{ $path } is a directory, not a GGUF file: name a .gguf file inside it",
                &[("path", &path.display())],
            ),
            CatalogError::Dir { path, source } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "catalog-dir",
                    "cannot list the models directory { $path }: { $source }",
                    &[("path", &path.display()), ("source", &source)],
                ),
                crate::i18n::tr(
                    "catalog-dir-2",
                    "fix its permissions, or point models_dir (TOKENSCOPE_MODELS_DIR) elsewhere"
                )
            ),
            CatalogError::Io { path, source } => crate::i18n::tr_args(
                "catalog-io",
                "cannot read { $path }: { $source }",
                &[("path", &path.display()), ("source", &source)],
            ),
            CatalogError::Gguf { path, source } => format!("{}: {source}", path.display()),
            CatalogError::Store {
                store,
                path,
                source,
            } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "catalog-store",
                    "cannot read the { $store } models at { $path }: { $source }",
                    &[
                        ("store", &store),
                        ("path", &path.display()),
                        ("source", &source)
                    ],
                ),
                crate::i18n::tr_args(
                    "catalog-store-2",
                    "fix its permissions, or leave { $store } out of `sources` in the config file",
                    &[("store", &store)],
                )
            ),
            CatalogError::MissingBlob {
                model,
                blob,
                manifest,
            } => crate::i18n::tr_args(
                "catalog-missing-blob",
                "ollama model { $model }: its weights { $blob } are missing (manifest { $manifest }): pull it again with `ollama pull { $model }`",
                &[
                    ("model", &model),
                    ("blob", &blob.display()),
                    ("manifest", &manifest.display()),
                ],
            ),
            CatalogError::BadManifest {
                model,
                path,
                message,
            } => crate::i18n::tr_args(
                "catalog-bad-manifest",
                "ollama model { $model }: manifest { $path } cannot be used: { $message }",
                &[
                    ("model", &model),
                    ("path", &path.display()),
                    ("message", &message),
                ],
            ),
            CatalogError::NoMatch {
                query,
                searched,
                available,
            } => format!(
                "{}\n  {}\n  {}\n  {}",
                crate::i18n::tr_args(
                    "catalog-no-match",
                    "no model matches { $query }",
                    &[("query", &format!("{query:?}"))],
                ),
                crate::i18n::tr_args(
                    "catalog-no-match-2",
                    "searched: { $searched }",
                    &[("searched", &searched)],
                ),
                crate::i18n::tr_args(
                    "catalog-no-match-3",
                    "available: { $available }",
                    &[("available", &available)],
                ),
                crate::i18n::tr(
                    "catalog-no-match-4",
                    "pass a path to a .gguf file, or run `tokenscope fetch-demos` to get the demo models"
                )
            ),
            CatalogError::Ambiguous { query, matches } => format!(
                "{}\n{}\n  {}",
                crate::i18n::tr_args(
                    "catalog-ambiguous",
                    "{ $query } matches several models:",
                    &[("query", &format!("{query:?}"))],
                ),
                matches,
                crate::i18n::tr(
                    "catalog-ambiguous-2",
                    "give a longer part of the name, or the path"
                )
            ),
        };
        f.write_str(&text)
    }
}

impl CatalogError {
    /// The file the error is about, when it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CatalogError::NotFound { path }
            | CatalogError::IsDirectory { path }
            | CatalogError::Io { path, .. }
            | CatalogError::Dir { path, .. }
            | CatalogError::DanglingLink { path, .. }
            | CatalogError::Gguf { path, .. }
            | CatalogError::Store { path, .. }
            | CatalogError::BadManifest { path, .. } => Some(path),
            CatalogError::MissingBlob { blob, .. } => Some(blob),
            CatalogError::NoMatch { .. } | CatalogError::Ambiguous { .. } => None,
        }
    }

    /// What a row of this error is called in a listing: the model's name
    /// in its store (`qwen2.5:0.5b`), the store (`ollama`), else the file
    /// name; escaped.
    pub fn row_name(&self) -> String {
        match self {
            CatalogError::MissingBlob { model, .. } | CatalogError::BadManifest { model, .. } => {
                escape_inline(model)
            }
            CatalogError::Store { store, .. } => store.to_string(),
            other => other
                .path()
                .and_then(Path::file_name)
                .map(|n| escape_inline(&n.to_string_lossy()))
                .unwrap_or_else(|| "?".to_string()),
        }
    }
}

/// Reads the card of the GGUF file at `path` (header only).
pub fn read_card(path: &Path) -> Result<ModelCard, CatalogError> {
    read_model(path).map(|(_, card)| card)
}

/// Reads and checks the header of the GGUF file at `path`, and its card.
///
/// # Errors
/// [`CatalogError::NotFound`], [`CatalogError::DanglingLink`],
/// [`CatalogError::IsDirectory`], [`CatalogError::Io`], or
/// [`CatalogError::Gguf`] for what is wrong with the file.
pub(crate) fn read_model(path: &Path) -> Result<(GgufHeader, ModelCard), CatalogError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(target) = fs::read_link(path) {
                return Err(CatalogError::DanglingLink {
                    path: path.to_path_buf(),
                    target,
                });
            }
            return Err(CatalogError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(CatalogError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(m) if m.is_dir() => {
            return Err(CatalogError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let header = gguf::read_header(path).map_err(|source| match source {
        GgufError::Io(source) => CatalogError::Io {
            path: path.to_path_buf(),
            source,
        },
        source => CatalogError::Gguf {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let card = ModelCard::from_header(path, &header);
    Ok((header, card))
}

/// The `*.gguf` entries directly in `dirs` (not recursive), sorted by file
/// name (then directory order), and the directories that could not be listed.
///
/// Every entry named `*.gguf` that is not a directory is kept, also a dangling
/// symlink, a symlink loop or a named pipe: [`read_card`] then says what is
/// wrong with it instead of the model silently missing. Nothing is followed
/// into subdirectories, so a directory symlink loop cannot recurse. A missing
/// directory counts as empty (the default models directory need not exist);
/// one that exists but cannot be listed (no permission, not a directory, a
/// symlink loop) is an error.
pub fn scan(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<CatalogError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                errors.push(CatalogError::Dir {
                    path: dir.clone(),
                    source,
                });
                continue;
            }
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_gguf = p
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"));
            if is_gguf && !p.is_dir() {
                files.push((p.file_name().unwrap_or_default().to_os_string(), i, p));
            }
        }
    }
    files.sort();
    (files.into_iter().map(|(_, _, p)| p).collect(), errors)
}

/// The cards of all models in `dirs` (tokenscope's own directories only;
/// see [`Places::discover`], which this is for them): errors for the
/// directories that could not be listed, then the files by file name, those
/// that cannot be read as errors in the list.
pub fn discover(dirs: &[PathBuf]) -> Vec<Result<ModelCard, CatalogError>> {
    Places::own(dirs.to_vec()).discover()
}

/// A model by path, or by a case-insensitive part of its file name in
/// `dirs` (tokenscope's own directories only; see [`Places::resolve`]).
pub fn resolve(name_or_path: &str, dirs: &[PathBuf]) -> Result<ModelCard, CatalogError> {
    Places::own(dirs.to_vec()).resolve(name_or_path)
}

/// Lines of the chat template shown by [`template_preview`].
const TEMPLATE_PREVIEW_LINES: usize = 6;

/// "yes (6 lines, 368 bytes)": a chat template in a few words.
pub(crate) fn template_summary(t: &str) -> String {
    use crate::i18n::{tr, tr_args};
    let lines = match t.lines().count() {
        1 => tr("catalog-one-line", "1 line"),
        n => tr_args("catalog-lines", "{ $n } lines", &[("n", &n)]),
    };
    let bytes = match t.len() {
        1 => tr("catalog-one-byte", "1 byte"),
        n => tr_args("catalog-bytes", "{ $n } bytes", &[("n", &n)]),
    };
    tr_args(
        "catalog-template-summary",
        "yes ({ $lines }, { $bytes })",
        &[("lines", &lines), ("bytes", &bytes)],
    )
}

/// The first lines of a chat template, escaped, each as `    | line`
/// (cut at 100 characters), then `    | …` if there are more.
pub(crate) fn template_preview(t: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = t.lines().collect();
    for l in lines.iter().take(TEMPLATE_PREVIEW_LINES) {
        let l: String = l.chars().take(100).collect();
        out.push_str(&format!("    | {}\n", escape_inline(&l)));
    }
    if lines.len() > TEMPLATE_PREVIEW_LINES {
        out.push_str("    | …\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::testutil::{T, Val, build, s};

    #[test]
    fn a_variant_key_needs_both_counts() {
        assert_eq!(VariantKey::of("llama", 0, 49_152), None);
        assert_eq!(VariantKey::of("llama", 134_515_008, 0), None);
        let key = VariantKey::of("llama", 134_515_008, 49_152).expect("both known");
        assert_eq!(
            (key.arch.as_str(), key.n_params, key.n_vocab),
            ("llama", 134_515_008, 49_152)
        );
    }

    fn model_bytes(
        name: Option<&str>,
        arch: &str,
        file_type: Option<u32>,
        template: Option<&str>,
    ) -> Vec<u8> {
        let mut kvs = vec![("general.architecture", s(arch))];
        if let Some(n) = name {
            kvs.push(("general.name", s(n)));
        }
        if let Some(t) = file_type {
            kvs.push(("general.file_type", Val::U32(t)));
        }
        let block = format!("{arch}.block_count");
        let ctx = format!("{arch}.context_length");
        let block: &'static str = Box::leak(block.into_boxed_str());
        let ctx: &'static str = Box::leak(ctx.into_boxed_str());
        kvs.push((block, Val::U32(4)));
        kvs.push((ctx, Val::U32(2048)));
        kvs.push((
            "tokenizer.ggml.tokens",
            Val::Strs((0..300).map(|i| format!("tok{i}")).collect()),
        ));
        if let Some(t) = template {
            kvs.push(("tokenizer.chat_template", s(t)));
        }
        kvs.push(("general.description", s(&"long text ".repeat(30))));
        build(
            &kvs,
            &[
                T("token_embd.weight", &[64, 300], 2),
                T("norm.weight", &[64], 0),
            ],
            32,
        )
    }

    fn write(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(file);
        fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn card_from_synthetic_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "tiny.Q4_K_M.gguf",
            &model_bytes(Some("Tiny"), "llama", Some(15), Some("{{x}}")),
        );
        let c = read_card(&p).unwrap();
        assert_eq!(c.name, "Tiny");
        assert_eq!(c.file_name, "tiny.Q4_K_M.gguf");
        assert_eq!(c.arch, "llama");
        assert_eq!(c.quant, "Q4_K_M");
        assert_eq!(c.n_layer, 4);
        assert_eq!(c.n_ctx_train, 2048);
        assert_eq!(c.n_vocab, 300);
        assert_eq!(c.n_params, 64 * 300 + 64);
        assert_eq!(c.file_size, fs::metadata(&p).unwrap().len());
        assert!(c.has_chat_template());
        let md = |k: &str| {
            c.metadata
                .iter()
                .find(|(key, _)| key == k)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(md("tokenizer.ggml.tokens"), "[str; 300]");
        assert!(
            md("general.description").ends_with("… (300 bytes)"),
            "{}",
            md("general.description")
        );
        assert!(
            serde_json::to_string(&c)
                .unwrap()
                .contains("\"quant\":\"Q4_K_M\"")
        );
    }

    #[test]
    fn text_from_the_file_is_escaped_on_the_card() {
        let dir = tempfile::tempdir().unwrap();
        let template = "{{ '\x1b[31m' }}\u{202e}";
        let bytes = model_bytes(
            Some("\x1b[31mX\x1b]0;t\x07\u{202e}"),
            "ll\u{9b}ama\u{202e}",
            Some(15),
            Some(template),
        );
        let p = write(dir.path(), "evil\u{202e}.gguf", &bytes);
        let c = read_card(&p).unwrap();
        assert_eq!(c.name, "␛[31mX␛]0;t␇<U+202E>");
        assert_eq!(c.arch, "ll\\x9bama<U+202E>");
        assert_eq!(c.file_name, "evil<U+202E>.gguf");
        assert_eq!(c.n_layer, 4, "lookups use the raw architecture");
        assert_eq!(c.chat_template.as_deref(), Some(template), "kept raw");
        for (k, v) in &c.metadata {
            for ch in k.chars().chain(v.chars()) {
                assert!(!crate::text::is_unsafe(ch), "{k:?} = {v:?}");
            }
        }
        let kvs = vec![
            ("general.architecture", s("llama")),
            ("x.\x1b[1mk\u{2066}", s("v\x1b[0m\u{202e}\n")),
        ];
        let p = write(dir.path(), "keys.gguf", &build(&kvs, &[], 32));
        let c = read_card(&p).unwrap();
        assert!(
            c.metadata.contains(&(
                "x.␛[1mk<U+2066>".to_string(),
                "v␛[0m<U+202E>\\n".to_string()
            )),
            "{:?}",
            c.metadata
        );
    }

    #[test]
    fn name_falls_back_to_stem_and_quant_to_tensor_type() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "mystery.gguf",
            &model_bytes(None, "gemma3", None, None),
        );
        let c = read_card(&p).unwrap();
        assert_eq!(c.name, "mystery");
        assert_eq!(c.quant, "Q4_0");
        assert!(!c.has_chat_template());
    }

    /// A "Q2_K" file as llama.cpp writes one for a model whose rows are 576
    /// weights wide: no Q2_K tensor at all.
    fn fallen_back_q2_k(dir: &Path, extra: Vec<(&'static str, Val)>) -> PathBuf {
        let mut kvs = vec![
            ("general.architecture", s("llama")),
            ("general.file_type", Val::U32(10)),
            ("llama.block_count", Val::U32(1)),
            (
                "tokenizer.ggml.tokens",
                Val::Strs((0..4).map(|i| format!("t{i}")).collect()),
            ),
        ];
        kvs.extend(extra);
        let bytes = build(
            &kvs,
            &[
                T("token_embd.weight", &[576, 4], 2),
                T("blk.0.attn_q.weight", &[576, 4], 2),
                T("blk.0.ffn_down.weight", &[512, 4], 11),
                T("blk.0.attn_norm.weight", &[576], 0),
            ],
            32,
        );
        write(dir, "m.Q2_K.gguf", &bytes)
    }

    #[test]
    fn the_card_says_what_the_tensors_really_are() {
        let dir = tempfile::tempdir().unwrap();
        let c = read_card(&fallen_back_q2_k(dir.path(), Vec::new())).unwrap();
        assert_eq!(c.quant, "Q2_K");
        let types: Vec<(&str, usize, u64, u64)> = c
            .mix
            .types
            .iter()
            .map(|t| (t.ty.as_str(), t.tensors, t.weights, t.bytes))
            .collect();
        // Q4_0: 32 weights in 18 bytes; Q3_K: 256 in 110; F32: 4 bytes each.
        assert_eq!(
            types,
            [
                ("Q4_0", 2, 4608, 4608 / 32 * 18),
                ("Q3_K", 1, 2048, 2048 / 256 * 110),
                ("F32", 1, 576, 576 * 4)
            ]
        );
        assert_eq!(c.mostly(), Some("Q4_0"));
        assert_eq!(c.quant_label(), "Q2_K requested · mostly Q4_0");
        assert_eq!(c.mix.counts(), "Q4_0 2 · Q3_K 1 · F32 1");
        assert_eq!(
            c.mix.misfit,
            Some(Misfit {
                main: "Q2_K".into(),
                block: 256,
                tensors: 2,
                of: 3,
                widths: vec![576],
            })
        );
        // Tensor data only: the header (vocabulary, metadata) is not weights.
        let bpw = c.bits_per_weight().unwrap();
        assert_eq!(bpw, (2592 + 880 + 2304) as f64 * 8.0 / 7232.0);
        assert!(bpw < c.file_size as f64 * 8.0 / c.n_params as f64);
        assert_eq!(c.made_from, None);

        // A file whose main type is the declared one keeps its plain name.
        let p = write(
            dir.path(),
            "q4_0.gguf",
            &model_bytes(Some("m"), "llama", Some(2), None),
        );
        let plain = read_card(&p).unwrap();
        assert_eq!(plain.quant_label(), "Q4_0");
        assert_eq!(plain.mix.misfit, None);
        assert!(!plain.mix.same_as(&c.mix) && c.mix.same_as(&c.mix.clone()));
    }

    #[test]
    fn the_card_reads_what_tokenscope_quantize_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let p = fallen_back_q2_k(
            dir.path(),
            vec![
                (KEY_MADE_FROM_FILE, s("base.Q4_1\x1b.gguf")),
                (KEY_MADE_FROM_TYPE, s("Q4_1")),
            ],
        );
        let c = read_card(&p).unwrap();
        assert_eq!(
            c.made_from,
            Some(MadeFrom {
                file: "base.Q4_1␛.gguf".into(),
                quant: "Q4_1".into()
            })
        );
    }

    #[test]
    fn main_tensor_types_name_known_tensor_types() {
        for f in (0..40).filter_map(ftype_name) {
            if let Some(main) = main_tensor_type(f) {
                assert!(GgmlType::from_name(main).is_some(), "{f} → {main}");
            }
        }
        assert_eq!(main_tensor_type("Q4_K_M"), Some("Q4_K"));
        assert_eq!(main_tensor_type("Q4_K"), None);
    }

    #[test]
    fn ftype_table() {
        assert_eq!(ftype_name(0), Some("F32"));
        assert_eq!(ftype_name(1), Some("F16"));
        assert_eq!(ftype_name(3), Some("Q4_1"));
        assert_eq!(ftype_name(7), Some("Q8_0"));
        assert_eq!(ftype_name(15), Some("Q4_K_M"));
        assert_eq!(ftype_name(15 | 1024), Some("Q4_K_M"));
        assert_eq!(ftype_name(18), Some("Q6_K"));
        assert_eq!(ftype_name(32), Some("BF16"));
        assert_eq!(ftype_name(38), Some("MXFP4_MOE"));
        assert_eq!(ftype_name(4), None);
        assert_eq!(ftype_name(33), None);
    }

    #[test]
    fn human_numbers() {
        assert_eq!(params_human(134_515_008), "135M");
        assert_eq!(params_human(268_098_176), "268M");
        assert_eq!(params_human(1_235_814_400), "1.2B");
        assert_eq!(params_human(999_999_999), "1.0B");
        assert_eq!(params_human(7_241_732_096), "7.2B");
        assert_eq!(params_human(5_000_000), "5.0M");
        assert_eq!(params_human(900), "900");
        assert_eq!(size_human(98_362_432), "93.8 MiB");
        assert_eq!(size_human(512), "512 B");
        assert_eq!(size_human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.gguf");
        let msg = read_card(&missing).unwrap_err().to_string();
        assert!(
            msg.contains("nope.gguf") && msg.contains("fetch-demos"),
            "{msg}"
        );
        let p = write(dir.path(), "zip.gguf", b"PK\x03\x04whatever");
        let err = read_card(&p).unwrap_err();
        assert!(matches!(
            err,
            CatalogError::Gguf {
                source: GgufError::NotGguf { .. },
                ..
            }
        ));
        assert!(err.to_string().contains("zip.gguf"));
        let bytes = model_bytes(Some("x"), "llama", Some(2), None);
        let p = write(dir.path(), "cut.gguf", &bytes[..bytes.len() - 10]);
        let msg = read_card(&p).unwrap_err().to_string();
        assert!(
            msg.contains("cut.gguf") && msg.contains("re-download"),
            "{msg}"
        );
        assert!(matches!(
            read_card(dir.path()),
            Err(CatalogError::IsDirectory { .. })
        ));
    }

    #[test]
    fn discover_sorts_and_keeps_broken_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(
            a.path(),
            "zeta.gguf",
            &model_bytes(Some("Z"), "llama", Some(2), None),
        );
        write(
            b.path(),
            "alpha.gguf",
            &model_bytes(Some("A"), "llama", Some(2), None),
        );
        write(b.path(), "broken.gguf", b"nope");
        write(b.path(), "notes.txt", b"not a model");
        fs::create_dir(b.path().join("sub.gguf")).unwrap();
        let dirs = vec![
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            a.path().join("missing"),
        ];
        let found = discover(&dirs);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].as_ref().unwrap().name, "A");
        assert!(found[1].as_ref().is_err());
        assert_eq!(found[2].as_ref().unwrap().name, "Z");
    }

    #[test]
    fn resolve_by_name_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = vec![dir.path().to_path_buf()];
        let bytes = model_bytes(Some("m"), "llama", Some(2), None);
        write(dir.path(), "SmolLM2-135M-Instruct.Q4_1.gguf", &bytes);
        write(dir.path(), "gemma-3-270m-q4_k_m.gguf", &bytes);
        write(dir.path(), "gemma-3-270m-q8_0.gguf", &bytes);
        write(dir.path(), "tiny.gguf", &bytes);
        write(dir.path(), "tiny-2.gguf", &bytes);

        // one
        assert_eq!(
            resolve("smol", &d).unwrap().file_name,
            "SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(
            resolve("Q4_K_M", &d).unwrap().file_name,
            "gemma-3-270m-q4_k_m.gguf"
        );
        // exact stem wins over substring matches
        assert_eq!(resolve("tiny", &d).unwrap().file_name, "tiny.gguf");
        assert_eq!(resolve("tiny.gguf", &d).unwrap().file_name, "tiny.gguf");
        // several
        let msg = resolve("gemma", &d).unwrap_err().to_string();
        assert!(
            msg.contains("gemma-3-270m-q4_k_m.gguf")
                && msg.contains("gemma-3-270m-q8_0.gguf")
                && msg.contains("longer"),
            "{msg}"
        );
        // none
        let err = resolve("llama3", &d).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CatalogError::NoMatch { .. }));
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(
            msg.contains("tiny-2.gguf") && msg.contains("fetch-demos"),
            "{msg}"
        );
        let msg = resolve("x", &[]).unwrap_err().to_string();
        assert!(msg.contains("available: none"), "{msg}");
        // path
        let p = dir.path().join("tiny-2.gguf");
        assert_eq!(
            resolve(p.to_str().unwrap(), &[]).unwrap().file_name,
            "tiny-2.gguf"
        );
        let msg = resolve("/no/such/model.gguf", &d).unwrap_err().to_string();
        assert!(
            msg.contains("/no/such/model.gguf") && msg.contains("does not exist"),
            "{msg}"
        );
        let msg = resolve("other.gguf", &d).unwrap_err().to_string();
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn load_errors_say_the_same_in_both_languages() {
        use crate::i18n::{Lang, with_lang};
        let p = PathBuf::from("/m/x.gguf");
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let cases: Vec<(CatalogError, Vec<&str>)> = vec![
            (
                CatalogError::NotFound { path: p.clone() },
                vec!["/m/x.gguf", "tokenscope fetch-demos"],
            ),
            (
                CatalogError::DanglingLink {
                    path: p.clone(),
                    target: "/t/y".into(),
                },
                vec!["/m/x.gguf", "/t/y"],
            ),
            (
                CatalogError::IsDirectory { path: p.clone() },
                vec!["/m/x.gguf", ".gguf"],
            ),
            (
                CatalogError::Dir {
                    path: p.clone(),
                    source: io(),
                },
                vec!["/m/x.gguf", "\n  ", "TOKENSCOPE_MODELS_DIR"],
            ),
            (
                CatalogError::Store {
                    store: "ollama",
                    path: p.clone(),
                    source: io(),
                },
                vec!["ollama", "/m/x.gguf", "`sources`"],
            ),
            (
                CatalogError::MissingBlob {
                    model: "qwen:7b".into(),
                    blob: "/b/sha".into(),
                    manifest: "/mf".into(),
                },
                vec!["ollama pull qwen:7b", "/b/sha", "/mf"],
            ),
            (
                CatalogError::NoMatch {
                    query: "zz".into(),
                    searched: "/d1".into(),
                    available: "a.gguf".into(),
                },
                vec!["\"zz\"", "/d1", "a.gguf", "fetch-demos"],
            ),
            (
                CatalogError::Ambiguous {
                    query: "q".into(),
                    matches: "  m1\n  m2".into(),
                },
                vec!["\"q\"", "m1", "m2"],
            ),
            (
                CatalogError::Gguf {
                    path: p.clone(),
                    source: GgufError::TruncatedData {
                        file_size: 1234,
                        expected: 5678,
                    },
                },
                vec!["/m/x.gguf", "1234", "5678"],
            ),
            (
                CatalogError::Gguf {
                    path: p,
                    source: GgufError::Corrupt {
                        at: 99,
                        what: "w1".into(),
                    },
                },
                vec!["99", "w1"],
            ),
        ];
        for (e, needles) in &cases {
            let en = with_lang(Lang::En, || e.to_string());
            let zh = with_lang(Lang::Zh, || e.to_string());
            assert_ne!(en, zh, "not translated: {en}");
            for n in needles {
                let n = n.replace("\\n", "\n");
                assert!(en.contains(&n) && zh.contains(&n), "{n:?} in\n{en}\n{zh}");
            }
            // The hint lines stay lines in both.
            assert_eq!(en.lines().count(), zh.lines().count(), "{en}\n{zh}");
        }
    }
}
