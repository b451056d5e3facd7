//! Which model a load names ([`ModelRef`]): a GGUF file on this machine, or a
//! model served by a llama-server (or another OpenAI-compatible server).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::path_serde::path_bytes;

/// Which model: a GGUF file on this machine, or a model served by a llama-server.
///
/// Its one text form ([`ModelRef::to_text`], [`ModelRef::from_text`]) is the
/// file's path, or `URL#MODEL` for a server's model: what the store's
/// `model_path` column, the model cards saved as JSON and the exports hold
/// (written so by earlier versions too), and what [`Display`](fmt::Display)
/// shows. The engine's binary frames (postcard) carry the variant and the
/// path's raw bytes instead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelRef {
    /// A GGUF file, loaded by the local engine.
    Local(PathBuf),
    /// Model `model` of the server at `url` (its id in the server's
    /// `/v1/models`; empty: the server's only model), loaded by a remote engine.
    Remote { url: String, model: String },
}

impl ModelRef {
    /// The file, for a local model.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            ModelRef::Local(p) => Some(p),
            ModelRef::Remote { .. } => None,
        }
    }

    /// The server's URL, for a remote model.
    pub fn server(&self) -> Option<&str> {
        match self {
            ModelRef::Local(_) => None,
            ModelRef::Remote { url, .. } => Some(url),
        }
    }

    /// Whether a server serves it.
    pub fn is_remote(&self) -> bool {
        matches!(self, ModelRef::Remote { .. })
    }

    /// The text form: the path (lossy when it is not UTF-8), or `URL#MODEL`.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Reads [`ModelRef::to_text`] back: `URL#MODEL` when the text starts with
    /// `http://` or `https://` and has a `#` (the first one ends the URL);
    /// anything else is a local path, a `#` in it included.
    pub fn from_text(text: &str) -> Self {
        let remote = text.starts_with("http://") || text.starts_with("https://");
        match text.split_once('#') {
            Some((url, model)) if remote => ModelRef::Remote {
                url: url.into(),
                model: model.into(),
            },
            _ => ModelRef::Local(text.into()),
        }
    }
}

/// The path as `Path::display` shows it, or `URL#MODEL` (the text form).
impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Local(p) => write!(f, "{}", p.display()),
            ModelRef::Remote { url, model } => write!(f, "{url}#{model}"),
        }
    }
}

/// The binary form: the variant, and a path as its raw bytes.
#[derive(Serialize, Deserialize)]
enum Wire {
    Local(#[serde(with = "path_bytes")] PathBuf),
    Remote { url: String, model: String },
}

/// Human-readable formats (JSON) get the text form (a local path that is not
/// UTF-8: its bytes, as [`path_bytes`] writes them); binary ones the variant.
impl Serialize for ModelRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return match self {
                ModelRef::Local(p) => path_bytes::serialize(p, s),
                remote => s.serialize_str(&remote.to_text()),
            };
        }
        match self {
            ModelRef::Local(p) => Wire::Local(p.clone()),
            ModelRef::Remote { url, model } => Wire::Remote {
                url: url.clone(),
                model: model.clone(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let path = path_bytes::deserialize(d)?;
            return Ok(match path.to_str() {
                Some(text) => ModelRef::from_text(text),
                None => ModelRef::Local(path),
            });
        }
        Ok(match Wire::deserialize(d)? {
            Wire::Local(p) => ModelRef::Local(p),
            Wire::Remote { url, model } => ModelRef::Remote { url, model },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    fn remote(url: &str, model: &str) -> ModelRef {
        ModelRef::Remote {
            url: url.into(),
            model: model.into(),
        }
    }

    #[test]
    fn the_text_form_reads_back_and_only_a_url_is_remote() {
        for (r, text) in [
            (ModelRef::Local("/m/a.gguf".into()), "/m/a.gguf"),
            (ModelRef::Local("/m/a#b.gguf".into()), "/m/a#b.gguf"),
            (ModelRef::Local("http-models/a#b".into()), "http-models/a#b"),
            (remote("http://h:1", "/m/a.gguf"), "http://h:1#/m/a.gguf"),
            (remote("https://h", "org/m#1"), "https://h#org/m#1"),
            (remote("http://h:1", ""), "http://h:1#"),
        ] {
            assert_eq!(r.to_text(), text);
            assert_eq!(r.to_string(), text);
            assert_eq!(ModelRef::from_text(text), r, "{text}");
        }
        // A URL without a model is no server's model.
        assert_eq!(
            ModelRef::from_text("http://h:1"),
            ModelRef::Local("http://h:1".into())
        );
        let r = remote("http://h:1", "m");
        assert_eq!((r.server(), r.local_path()), (Some("http://h:1"), None));
        let l = ModelRef::Local("/m/a.gguf".into());
        assert_eq!(
            (l.server(), l.local_path()),
            (None, Some(Path::new("/m/a.gguf")))
        );
    }

    #[test]
    fn json_holds_the_text_form_and_frames_the_variant() {
        let raw = ModelRef::Local(PathBuf::from(OsString::from_vec(b"/m/\xff#.gguf".to_vec())));
        for (r, json) in [
            (ModelRef::Local("/m/a#b.gguf".into()), r#""/m/a#b.gguf""#),
            (
                remote("http://h:1", "/m/a.gguf"),
                r#""http://h:1#/m/a.gguf""#,
            ),
            (raw.clone(), "[47,109,47,255,35,46,103,103,117,102]"),
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), json);
            assert_eq!(serde_json::from_str::<ModelRef>(json).unwrap(), r);
            let b = postcard::to_allocvec(&r).unwrap();
            assert_eq!(postcard::from_bytes::<ModelRef>(&b).unwrap(), r);
        }
        // The variant crosses the pipe: a local path shaped like a model ref stays local.
        let odd = ModelRef::Local("http://h:1#m".into());
        let b = postcard::to_allocvec(&odd).unwrap();
        assert_eq!(postcard::from_bytes::<ModelRef>(&b).unwrap(), odd);
    }
}
