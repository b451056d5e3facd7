//! The HTTP side of a remote engine: one agent per server (connections kept
//! alive), the key in the `Authorization` header, transport failures and
//! error statuses in words ([`RemoteError`]).

use std::time::Duration;

use serde_json::Value;

use super::target::RemoteTarget;
use crate::engine::api::{RemoteError, Words};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle connection is kept for reuse. llama-server (cpp-httplib)
/// closes a keep-alive connection after 5 s idle
/// (`CPPHTTPLIB_KEEPALIVE_TIMEOUT_SECOND`); ureq's default (15 s) would reuse
/// connections the server has already closed, and the request sent on one
/// fails with "Peer disconnected" before any response.
const MAX_IDLE_AGE: Duration = Duration::from_secs(2);

/// Whether a transport error is a connection closed by the server before it
/// answered (ureq's `UnexpectedEof` "Peer disconnected" while awaiting the
/// response head). A reused keep-alive connection can be closed between the
/// pool's check and the request (a race [`MAX_IDLE_AGE`] narrows but cannot
/// close), so such a request is sent once more on a fresh connection. Every
/// request this client sends is safe to repeat: reads, and completions whose
/// only effect is their answer.
fn closed_before_answer(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
}

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
            .max_idle_age(MAX_IDLE_AGE)
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

    /// Sends a request built by `make`, once more on a fresh connection when
    /// the first attempt's connection was closed before any answer
    /// ([`closed_before_answer`]).
    fn call_retrying(
        &self,
        make: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, RemoteError> {
        match make() {
            Err(e) if closed_before_answer(&e) => make().map_err(|e| self.transport(e, what)),
            other => other.map_err(|e| self.transport(e, what)),
        }
    }

    /// A transport error in words (`what`: the request, for a timeout).
    fn transport(&self, e: ureq::Error, what: &str) -> RemoteError {
        let url = self.url();
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                RemoteError::Unreachable {
                    url,
                    reason: Words::tr_args(
                        "remote-no-connection",
                        "no connection within { $seconds } s",
                        &[("seconds", &CONNECT_TIMEOUT.as_secs())],
                    ),
                }
            }
            ureq::Error::Timeout(_) => RemoteError::Timeout {
                url,
                seconds: self.target.timeout.as_secs(),
                what: what.to_string(),
            },
            ureq::Error::HostNotFound => RemoteError::Unreachable {
                url,
                reason: Words::tr("remote-host-unknown", "the host name does not resolve"),
            },
            ureq::Error::ConnectionFailed => RemoteError::Unreachable {
                url,
                reason: Words::tr("remote-refused", "the connection was refused"),
            },
            // Refused by the host's OS (nothing listens on the port) comes as an
            // I/O error whose text is the OS's English: said in our words.
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                RemoteError::Unreachable {
                    url,
                    reason: Words::tr("remote-refused", "the connection was refused"),
                }
            }
            ureq::Error::Io(io) => RemoteError::Unreachable {
                url,
                reason: io.to_string().into(),
            },
            other => RemoteError::Unreachable {
                url,
                reason: other.to_string().into(),
            },
        }
    }

    /// An error status in words: 401/403 name the key, others quote the body.
    pub(super) fn status(&self, status: u16, body: &str, what: &str) -> RemoteError {
        let url = self.url();
        if status == 401 || status == 403 {
            let hint = if self.target.api_key.is_some() {
                Words::tr(
                    "remote-key-wrong",
                    "the key is wrong or not allowed here; check the variable named by --api-key-env (or api_key_env in the config)",
                )
            } else {
                Words::tr(
                    "remote-key-wanted",
                    "the server wants an API key: put it in an environment variable and name it with --api-key-env NAME (or api_key_env in the config)",
                )
            };
            return RemoteError::Unauthorized {
                url,
                status,
                hint,
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
        let resp = self.call_retrying(
            || {
                self.auth(self.agent.get(format!("{}{path}", self.target.url)))
                    .call()
            },
            &what,
        )?;
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
        let body = body.to_string();
        let resp = self.call_retrying(
            || {
                self.auth(self.agent.post(format!("{}{path}", self.target.url)))
                    .content_type("application/json")
                    .send(&body)
            },
            &what,
        )?;
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
        let body = body.to_string();
        let resp = self.call_retrying(
            || {
                self.auth(self.agent.post(format!("{}{path}", self.target.url)))
                    .header("Accept", "text/event-stream")
                    .content_type("application/json")
                    .send(&body)
            },
            &what,
        )?;
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

    /// A server whose first connection answers one request and then, as
    /// the next request arrives on it, closes without answering: what a
    /// client sees when llama-server times a keep-alive connection out just
    /// as the client reuses it. That request must be answered anyway, sent
    /// again on a fresh connection.
    #[test]
    fn a_request_on_a_connection_the_server_closed_is_sent_again() {
        use std::io::{BufRead, BufReader, Write};
        fn read_head(r: &mut impl BufRead) {
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
            }
        }
        fn answer(conn: &mut std::net::TcpStream, n: u32) {
            let body = format!("{{\"n\":{n}}}");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(format!("{head}{body}").as_bytes()).unwrap();
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serve = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            read_head(&mut r);
            answer(&mut conn, 1);
            read_head(&mut r);
            drop(r);
            drop(conn);
            let (mut conn, _) = listener.accept().unwrap();
            read_head(&mut BufReader::new(conn.try_clone().unwrap()));
            answer(&mut conn, 2);
        });
        let client = Client::new(RemoteTarget::new(&url, None).unwrap());
        let first = client.get_json("/a").unwrap().unwrap();
        let second = client.get_json("/b").unwrap().unwrap();
        assert_eq!(
            (first["n"].as_u64(), second["n"].as_u64()),
            (Some(1), Some(2))
        );
        serve.join().unwrap();
    }

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
