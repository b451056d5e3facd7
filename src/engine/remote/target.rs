//! Which server to talk to: its checked base URL, the API key (never
//! printed), how long it may stay silent.

use std::time::Duration;

use crate::engine::api::{RemoteError, Words};

/// Longest silence of a server while it answers (a long prompt's prefill on
/// a busy server comes first): then the request fails as timed out
/// ([`RemoteTarget::timeout`]).
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// An API key, never printed (its `Debug` says `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header only.
    pub(super) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// A server to talk to: its base URL (scheme, host, port, optional path
/// prefix; no trailing slash) and the key to send, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTarget {
    pub url: String,
    pub api_key: Option<ApiKey>,
    /// Longest silence of the server while it answers ([`READ_TIMEOUT`] by default).
    pub timeout: Duration,
}

impl RemoteTarget {
    /// A target for `url` (`http://` or `https://`, with a host); a
    /// trailing `/` and a trailing `/v1` are dropped (both spellings are common).
    ///
    /// # Errors
    /// [`RemoteError::BadUrl`] for anything else, saying what is expected.
    pub fn new(url: &str, api_key: Option<ApiKey>) -> Result<Self, RemoteError> {
        let bad = |why: Words| RemoteError::BadUrl {
            url: url.to_string(),
            why,
        };
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
        let uri: ureq::http::Uri = trimmed
            .parse()
            .map_err(|_| bad(Words::tr("remote-url-not-url", "not a URL")))?;
        // A user:password@ in the URL would be shown, logged and saved with
        // it: refused, without repeating it.
        if let Some(a) = uri.authority()
            && let Some((_, host)) = a.as_str().rsplit_once('@')
        {
            return Err(RemoteError::BadUrl {
                url: format!("{}://…@{host}", uri.scheme_str().unwrap_or("http")),
                why: Words::tr(
                    "remote-url-credentials",
                    "it holds a user name or password: give the key with --api-key-env NAME (or api_key_env in [[servers]])",
                ),
            });
        }
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            Some(s) => {
                return Err(bad(Words::tr_args(
                    "remote-url-scheme",
                    "the scheme is { $scheme }, not http or https",
                    &[("scheme", &s)],
                )));
            }
            None => {
                return Err(bad(Words::tr(
                    "remote-url-no-scheme",
                    "it has no scheme: write http://HOST:PORT",
                )));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad(Words::tr("remote-url-no-host", "it has no host")));
        }
        if uri.query().is_some() {
            return Err(bad(Words::tr(
                "remote-url-query",
                "it has a query (?…): give the server's base URL",
            )));
        }
        Ok(Self {
            url: trimmed.to_string(),
            api_key,
            timeout: READ_TIMEOUT,
        })
    }

    /// The host, without brackets for IPv6.
    fn host(&self) -> String {
        let uri: ureq::http::Uri = self.url.parse().expect("checked in new");
        uri.host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    }

    /// A warning for plain http to a host that is not this machine: the
    /// conversation (and the key, if any) cross the network unencrypted. In
    /// the interface language of the caller's thread (a report serialized to
    /// JSON asks for it under `i18n::with_lang(Lang::En, ..)`).
    pub fn warning(&self) -> Option<String> {
        if !self.url.starts_with("http://") {
            return None;
        }
        let host = self.host();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!loopback).then(|| {
            // Two messages, not a clause pasted in: Chinese words the
            // sentence around "and the API key" in its own order.
            if self.api_key.is_some() {
                crate::i18n::tr_args(
                    "remote-plain-http-key",
                    "{ $url } is plain http to another machine: the conversation and the API key crosses the network unencrypted (use https, or an SSH tunnel to a loopback port)",
                    &[("url", &self.url)],
                )
            } else {
                crate::i18n::tr_args(
                    "remote-plain-http",
                    "{ $url } is plain http to another machine: the conversation crosses the network unencrypted (use https, or an SSH tunnel to a loopback port)",
                    &[("url", &self.url)],
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_plain_http_elsewhere_warns() {
        let t = RemoteTarget::new("http://127.0.0.1:8080/v1/", None).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080");
        assert!(t.warning().is_none());
        assert!(
            RemoteTarget::new("http://localhost:1", None)
                .unwrap()
                .warning()
                .is_none()
        );
        assert!(
            RemoteTarget::new("http://[::1]:1", None)
                .unwrap()
                .warning()
                .is_none()
        );
        let far = RemoteTarget::new("http://gpu-box:8000", Some(ApiKey::new("sk-secret"))).unwrap();
        let w = far.warning().unwrap();
        assert!(w.contains("unencrypted") && w.contains("API key"), "{w}");
        assert!(!w.contains("sk-secret"));
        // Whole in each language: the reader's on screen, English for JSON.
        use crate::i18n::{Lang, with_lang};
        let zh = with_lang(Lang::Zh, || far.warning()).unwrap();
        assert!(
            zh.starts_with("http://gpu-box:8000 是连到另一台机器的明文 http")
                && zh.contains("对话和 API 密钥未经加密"),
            "{zh}"
        );
        assert!(!zh.contains("unencrypted"), "{zh}");
        let plain = RemoteTarget::new("http://gpu-box:8000", None).unwrap();
        let zh = with_lang(Lang::Zh, || plain.warning()).unwrap();
        assert!(zh.contains("对话未经加密") && !zh.contains("API"), "{zh}");
        assert_eq!(
            with_lang(Lang::En, || plain.warning()).unwrap(),
            "http://gpu-box:8000 is plain http to another machine: the conversation crosses the network unencrypted (use https, or an SSH tunnel to a loopback port)"
        );
        assert!(!format!("{far:?}").contains("sk-secret"));
        assert!(
            RemoteTarget::new("https://gpu-box", None)
                .unwrap()
                .warning()
                .is_none()
        );
        for bad in ["gpu-box:8000", "ftp://x", "http://", "http://x/?a=1"] {
            let e = RemoteTarget::new(bad, None).unwrap_err();
            assert!(matches!(e, RemoteError::BadUrl { .. }), "{bad}: {e}");
        }
        // A password in the URL is refused and not repeated.
        let e = RemoteTarget::new("https://me:hunter2@gpu-box:8000", None).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RemoteError::BadUrl { .. }), "{text}");
        assert!(
            !text.contains("hunter2") && text.contains("--api-key-env"),
            "{text}"
        );
    }
}
