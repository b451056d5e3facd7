//! Paths on the wire as their raw bytes: serde's own `PathBuf` refuses
//! non-UTF-8 names, which Unix file names may be. Use with
//! `#[serde(with = "crate::engine::path_serde::path_bytes")]`.

/// A `PathBuf` as raw bytes in binary formats (the engine's postcard); in
/// human-readable ones (JSON: exports, `--format jsonl`, the database's
/// model cards) as a string when it is UTF-8, which people and other tools
/// read, and as an array of bytes only when it is not. Either reads back.
pub(crate) mod path_bytes {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(p: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable()
            && let Some(text) = p.to_str()
        {
            return s.serialize_str(text);
        }
        s.serialize_bytes(p.as_os_str().as_bytes())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let bytes: serde_bytes_vec::Bytes = Deserialize::deserialize(d)?;
        Ok(PathBuf::from(OsString::from_vec(bytes.0)))
    }

    /// A byte vector read from either bytes or a sequence of u8.
    mod serde_bytes_vec {
        pub(crate) struct Bytes(pub Vec<u8>);

        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a path as bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                        Ok(Bytes(v.as_bytes().to_vec()))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Bytes, A::Error> {
                        let mut v = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            v.push(b);
                        }
                        Ok(Bytes(v))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}

/// An `Option<PathBuf>` as raw bytes (see [`path_bytes`]).
pub(crate) mod path_bytes_opt {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::path_bytes")] PathBuf);

    pub(crate) fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        p.as_ref().map(|p| Wrap(p.clone())).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct P(#[serde(with = "super::path_bytes")] PathBuf);

    #[test]
    fn json_has_a_string_when_it_can_and_everything_reads_back() {
        let utf8 = P("/models/é.gguf".into());
        let j = serde_json::to_string(&utf8).unwrap();
        assert_eq!(j, r#""/models/é.gguf""#);
        assert_eq!(serde_json::from_str::<P>(&j).unwrap(), utf8);
        // Not UTF-8: bytes, which JSON writes as an array.
        let raw = P(PathBuf::from(OsString::from_vec(b"/m/\xff.gguf".to_vec())));
        let j = serde_json::to_string(&raw).unwrap();
        assert!(j.starts_with("[47,109,47,255"), "{j}");
        assert_eq!(serde_json::from_str::<P>(&j).unwrap(), raw);
        // What earlier versions wrote for any path still reads.
        let old = serde_json::to_string(&"/m/a".bytes().collect::<Vec<u8>>()).unwrap();
        assert_eq!(serde_json::from_str::<P>(&old).unwrap(), P("/m/a".into()));
        // The engine's binary frames keep raw bytes, either way.
        for p in [utf8, raw] {
            let b = postcard::to_allocvec(&p).unwrap();
            assert_eq!(postcard::from_bytes::<P>(&b).unwrap(), p);
        }
    }
}
