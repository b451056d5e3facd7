//! The HTTP side of a remote engine: one agent per server (connections kept
//! alive), the key in the `Authorization` header, transport failures and
//! error statuses in words ([`RemoteError`]).

use std::time::Duration;

use serde_json::Value;

use super::target::RemoteTarget;
use crate::engine::api::RemoteError;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP side: one agent (keeps connections alive) for a target.
pub(super) struct Client {
    pub(super) target: RemoteTarget,
    agent: ureq::Agent,
}

/// Whether a 401/403 body says the key itself was rejected: llama-server's
/// (and OpenAI's) `{"error": {"type": "authentication_error", …}}`.
pub(super) fn key_rejected(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| {
        v.pointer("/error/type").and_then(Value::as_str) == Some("authentication_error")
    })
}

impl Client {
    pub(super) fn new(target: RemoteTarget) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(target.timeout))
            .timeout_per_read(Some(target.timeout))
            .user_agent(concat!("tokenscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { target, agent }
    }

    pub(super) fn url(&self) -> String {
        self.target.url.clone()
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.target.api_key {
            Some(key) => req.header("Authorization", format!("Bearer {}", key.secret())),
            None => req,
        }
    }

    /// A transport error in words (`what`: the request, for a timeout).
    fn transport(&self, e: ureq::Error, what: &str) -> RemoteError {
        let url = self.url();
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                RemoteError::Unreachable {
                    url,
                    reason: format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                }
            }
            ureq::Error::Timeout(_) => RemoteError::Timeout {
                url,
                seconds: self.target.timeout.as_secs(),
                what: what.to_string(),
            },
            ureq::Error::HostNotFound => RemoteError::Unreachable {
                url,
                reason: "the host name does not resolve".into(),
            },
            ureq::Error::ConnectionFailed => RemoteError::Unreachable {
                url,
                reason: "the connection was refused".into(),
            },
            ureq::Error::Io(io) => RemoteError::Unreachable {
                url,
                reason: io.to_string(),
            },
            other => RemoteError::Unreachable {
                url,
                reason: other.to_string(),
            },
        }
    }

    /// An error status in words: 401/403 name the key, others quote the body.
    pub(super) fn status(&self, status: u16, body: &str, what: &str) -> RemoteError {
        let url = self.url();
        if status == 401 || status == 403 {
            let hint = if self.target.api_key.is_some() {
                "the key is wrong or not allowed here; check the variable named by --api-key-env (or api_key_env in the config)"
            } else {
                "the server wants an API key: put it in an environment variable and name it with --api-key-env NAME (or api_key_env in the config)"
            };
            return RemoteError::Unauthorized {
                url,
                status,
                hint: hint.into(),
                key_rejected: key_rejected(body),
            };
        }
        let message = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.get("message"))
                    .or_else(|| v.get("detail"))
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .unwrap_or_else(|| crate::text::truncate(body.trim(), 300));
        RemoteError::Status {
            url,
            what: what.into(),
            status,
            message: crate::text::escape_inline(&message),
        }
    }

    /// `GET path` as JSON; `Ok(None)` for a 404 (an endpoint this server lacks).
    pub(super) fn get_json(&self, path: &str) -> Result<Option<Value>, RemoteError> {
        let what = format!("GET {path}");
        let resp = self
            .auth(self.agent.get(format!("{}{path}", self.target.url)))
            .call()
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.transport(e, &what))?;
        match status {
            200..=299 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| RemoteError::Protocol {
                    url: self.url(),
                    what,
                    detail: e.to_string(),
                }),
            404 => Ok(None),
            _ => Err(self.status(status, &body, &what)),
        }
    }

    /// `POST path` with `body`, answered as JSON (not streamed).
    pub(super) fn post_json(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        let what = format!("POST {path}");
        let resp = self
            .auth(self.agent.post(format!("{}{path}", self.target.url)))
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.transport(e, &what))?;
        if !(200..300).contains(&status) {
            return Err(self.status(status, &text, &what));
        }
        serde_json::from_str(&text).map_err(|e| RemoteError::Protocol {
            url: self.url(),
            what,
            detail: e.to_string(),
        })
    }

    /// `POST path` with `body`, streamed: the response's body on success.
    pub(super) fn post_stream(&self, path: &str, body: &Value) -> Result<ureq::Body, RemoteError> {
        let what = format!("POST {path}");
        let resp = self
            .auth(self.agent.post(format!("{}{path}", self.target.url)))
            .header("Accept", "text/event-stream")
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp.into_body());
        }
        let text = resp.into_body().read_to_string().unwrap_or_default();
        Err(self.status(status, &text, &what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_rejected_in_words_is_told_from_a_closed_path() {
        assert!(key_rejected(
            r#"{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}"#
        ));
        assert!(!key_rejected("<html>403 Forbidden</html>"));
        assert!(!key_rejected(
            r#"{"error":{"message":"not here","type":"forbidden"}}"#
        ));
    }
}
