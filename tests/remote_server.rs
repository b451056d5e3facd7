//! The remote engine against a real llama-server (fetched like the demo
//! models, started on a free loopback port, killed when each test ends).

mod common;

use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::server::{LlamaServer, free_port};
use common::{SMOL, run_binary};
use serde_json::{Value, json};
use tokenscope::engine::remote::{ApiKey, RemoteError, RemoteTarget};
use tokenscope::engine::{
    ChatMode, EngineError, EngineHandle, Event, GenerateRequest, ModelRef, SamplingParams,
    StopReason, TokenStep,
};

/// How long any one event may take (a loaded test machine).
const PATIENCE: Duration = Duration::from_secs(120);

fn greedy() -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

/// A remote engine on `url`, with the server's only model loaded.
fn engine(url: &str, key: Option<&str>) -> (EngineHandle, Receiver<Event>, Event) {
    let target = RemoteTarget::new(url, key.map(ApiKey::new)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // The server's only model.
    let model = ModelRef::Remote {
        url: target.url.clone(),
        model: String::new(),
    };
    let mut h = EngineHandle::spawn_remote(target, tx, |e| e);
    h.load(1, 0, model, Default::default());
    let loaded = rx.recv_timeout(PATIENCE).expect("an answer to the load");
    (h, rx, loaded)
}

/// The events of `request` up to its final one.
fn events_of(rx: &Receiver<Event>, request: u64) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let e = rx.recv_timeout(PATIENCE).expect("an event in time");
        if e.request() != Some(request) {
            continue;
        }
        let last = e.is_final();
        out.push(e);
        if last {
            return out;
        }
    }
}

fn steps(events: &[Event]) -> Vec<TokenStep> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Token { step, .. } => Some((**step).clone()),
            _ => None,
        })
        .collect()
}

fn chat(text: &str, max_tokens: u32, k: usize) -> GenerateRequest {
    GenerateRequest::new(
        vec![tokenscope::engine::ChatMessage::new(
            tokenscope::engine::Role::User,
            text,
        )],
        greedy(),
        max_tokens,
        k,
    )
}

/// `run --server --raw` at temperature 0 reports exactly the candidates and
/// probabilities the server's own `/completion` with `n_probs` gives.
#[test]
fn run_over_the_server_matches_its_own_n_probs() {
    let server = LlamaServer::start(SMOL, &[]);
    let prompt = "The capital of France is";
    let (n, k) = (8, 5);
    let direct = server.post(
        "/completion",
        &json!({"prompt": prompt, "n_predict": n, "n_probs": k, "temperature": 0, "cache_prompt": false}),
    );
    let direct = direct["completion_probabilities"]
        .as_array()
        .expect("n_probs output")
        .clone();
    assert_eq!(direct.len(), n);
    let (out, err, ok) = run_on(
        &server.url,
        &[
            "--raw",
            "-p",
            prompt,
            "--temp",
            "0",
            "--max-tokens",
            &n.to_string(),
            "--candidates",
            &k.to_string(),
            "--format",
            "jsonl",
        ],
    );
    assert!(ok, "{err}");
    let lines = token_lines(&out);
    assert_eq!(lines.len(), n, "{out}");
    for (i, (ours, theirs)) in lines.iter().zip(&direct).enumerate() {
        assert_eq!(ours["id"], theirs["id"], "token {i}");
        let p = |v: &Value| v.as_f64().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        assert!(
            close(p(&ours["p"]), p(&theirs["logprob"]).exp()),
            "token {i}: {ours} vs {theirs}"
        );
        let top = ours["top"].as_array().unwrap();
        let their_top = theirs["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), k);
        for (j, (a, b)) in top.iter().zip(their_top).enumerate() {
            assert_eq!(a["id"], b["id"], "token {i} candidate {j}");
            assert!(
                close(p(&a["p"]), p(&b["logprob"]).exp()),
                "token {i} candidate {j}: {a} vs {b}"
            );
        }
        assert!(
            ours["entropy"].is_null(),
            "a server gives no entropy: none is invented"
        );
    }
    assert!(out.contains("\"type\":\"done\""), "{out}");
}

/// What the pinned llama-server gives (the README's "sampler column" says
/// so): one request reports either the model's probabilities (`n_probs`:
/// `logprob`, `top_logprobs`) or, with `post_sampling_probs`, the sampler's
/// *instead* (`prob`, `top_probs`: only the candidates the chain kept,
/// renormalized), never both. tokenscope asks for the model's, so it shows
/// no sampler number (none it did not get). Should a later server give both,
/// this test fails: then the sampler column can be filled from it.
#[test]
fn the_pinned_server_gives_the_models_or_the_samplers_probabilities_not_both() {
    let server = LlamaServer::start(SMOL, &[]);
    let ask = |post_sampling: bool| {
        let v = server.post(
            "/completion",
            &json!({"prompt": "The capital of France is", "n_predict": 1, "n_probs": 5,
                    "temperature": 0.8, "top_k": 2, "seed": 7, "cache_prompt": false,
                    "post_sampling_probs": post_sampling}),
        );
        v["completion_probabilities"][0].clone()
    };
    let model = ask(false);
    assert!(
        model["logprob"].is_f64() && model["prob"].is_null(),
        "{model}"
    );
    assert_eq!(
        model["top_logprobs"].as_array().unwrap().len(),
        5,
        "{model}"
    );
    assert!(model["top_probs"].is_null(), "{model}");
    let sampler = ask(true);
    assert!(
        sampler["prob"].is_f64() && sampler["logprob"].is_null(),
        "{sampler}"
    );
    assert!(sampler["top_logprobs"].is_null(), "{sampler}");
    let kept = sampler["top_probs"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "top_k 2 keeps two: {sampler}");
    let sum: f64 = kept.iter().map(|c| c["prob"].as_f64().unwrap()).sum();
    assert!(
        (sum - 1.0).abs() < 1e-3,
        "the kept ones, renormalized: {sampler}"
    );
    // The same two tokens lead, in the model's order.
    let ids = |v: &[Value]| v.iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(kept),
        ids(&model["top_logprobs"].as_array().unwrap()[..2])
    );

    // tokenscope reports the model's numbers and no sampler number at all.
    let (out, err, ok) = run_on(
        &server.url,
        &[
            "--raw",
            "-p",
            "The capital of France is",
            "--temp",
            "0.8",
            "--top-k",
            "2",
            "--max-tokens",
            "2",
            "--candidates",
            "5",
            "--format",
            "jsonl",
        ],
    );
    assert!(ok, "{err}");
    let tokens = token_lines(&out);
    assert_eq!(tokens.len(), 2, "{out}");
    for t in &tokens {
        assert!(t["p"].is_f64() && t["p_sampled"].is_null(), "{t}");
        let top = t["top"].as_array().unwrap();
        assert_eq!(top.len(), 5, "{t}");
        assert!(top.iter().all(|c| c["p_sampled"].is_null()), "{t}");
    }
}

/// The `token` lines of `run --format jsonl` output.
fn token_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["type"] == "token")
        .collect()
}

/// Chat goes through the server's chat endpoint (its template), with token
/// ids, log-probabilities and what the server says about the model.
#[test]
fn chat_streams_tokens_with_ids_and_the_server_is_described() {
    let server = LlamaServer::start(SMOL, &[]);
    let (mut h, rx, loaded) = engine(&server.url, None);
    let Event::Loaded {
        info, caps, vocab, ..
    } = loaded
    else {
        panic!("not loaded: {loaded:?}");
    };
    assert!(
        info.backend_text().contains("remote llama-server"),
        "{}",
        info.backend_text()
    );
    assert!(info.backend_text().contains(&server.url));
    assert_eq!(info.quant, "Q4_1");
    assert_eq!(info.n_ctx, 2048);
    assert_eq!(info.n_vocab, 49152);
    assert!(caps.token_ids && !caps.entropy && !caps.step && caps.remote.is_some());
    h.generate(2, 0, chat("Say hello.", 12, 4));
    let events = events_of(&rx, 2);
    assert!(
        matches!(
            events[0],
            Event::Started {
                mode: ChatMode::Server,
                ..
            }
        ),
        "{:?}",
        events[0]
    );
    let steps = steps(&events);
    assert!(!steps.is_empty());
    for s in &steps {
        let d = s.dist.as_ref().expect("candidates");
        assert_eq!(d.top.len(), 4);
        assert!(d.entropy.is_none());
        assert!(d.top.windows(2).all(|w| w[0].logit >= w[1].logit));
        let p = s.p().unwrap();
        assert!(p > 0.0 && p <= 1.0);
        // The text of every id reported is known.
        assert_eq!(vocab.bytes(s.id), s.text.as_bytes(), "{s:?}");
        for c in &d.top {
            assert!(
                !vocab.bytes(c.id).is_empty(),
                "candidate {} has no text",
                c.id
            );
        }
    }
    let Some(Event::Done { stats, .. }) = events.last() else {
        panic!("{:?}", events.last());
    };
    assert_eq!(stats.n_generated, steps.len());
    assert!(
        stats.n_prompt > 5,
        "the server's template wraps the message: {stats:?}"
    );
    // The server's count of the prompt comes before the first token (the
    // context used while the reply streams), and agrees with its timings.
    let counted = prompt_counted(&events);
    assert_eq!(counted, (stats.n_prompt, stats.n_prompt_reused));
    assert_eq!(stats.ctx_used, stats.n_prompt + stats.n_generated);
    // Again, longer: the server reuses the prompt it has in its cache.
    let mut again = chat("Say hello.", 12, 4);
    again.messages.push(tokenscope::engine::ChatMessage::new(
        tokenscope::engine::Role::Assistant,
        "Hello!",
    ));
    again.messages.push(tokenscope::engine::ChatMessage::new(
        tokenscope::engine::Role::User,
        "Again.",
    ));
    h.generate(3, 0, again);
    let events = events_of(&rx, 3);
    let (n_prompt, n_reused) = prompt_counted(&events);
    assert!(
        n_prompt > counted.0 && n_reused > 0 && n_reused < n_prompt,
        "{events:?}"
    );
    let Some(Event::Done { stats, .. }) = events.last() else {
        panic!("{:?}", events.last());
    };
    assert_eq!(
        (n_prompt, n_reused),
        (stats.n_prompt, stats.n_prompt_reused)
    );
}

/// The `PromptCounted` of a request's events, checked to come before its
/// first token and after a prefill progress that reached its end.
fn prompt_counted(events: &[Event]) -> (usize, usize) {
    let at = |f: &dyn Fn(&Event) -> bool| events.iter().position(f);
    let counted = at(&|e| matches!(e, Event::PromptCounted { .. })).expect("a count");
    let first = at(&|e| matches!(e, Event::Token { .. })).expect("a token");
    assert!(counted < first, "{events:?}");
    let Event::PromptCounted {
        n_prompt, n_reused, ..
    } = events[counted]
    else {
        unreachable!()
    };
    let last_progress = events[..counted].iter().rev().find_map(|e| match e {
        Event::PrefillProgress { done, total, .. } => Some((*done, *total)),
        _ => None,
    });
    assert_eq!(
        last_progress,
        Some((n_prompt - n_reused, n_prompt - n_reused)),
        "{events:?}"
    );
    (n_prompt, n_reused)
}

/// `tokenscope run --server URL ARGS…` on no config: (stdout, stderr, success).
fn run_on(url: &str, args: &[&str]) -> (String, String, bool) {
    let mut all = vec!["run", "--server", url];
    all.extend_from_slice(args);
    run_binary(&common::models_dir(), &all)
}

/// Reads `request`'s events, calling `act` once after its `after`-th token,
/// until the final event: (the final event, tokens received).
fn long_reply_until(
    rx: &Receiver<Event>,
    request: u64,
    after: usize,
    mut act: impl FnMut(),
) -> (Event, usize) {
    let mut n = 0;
    loop {
        let e = rx.recv_timeout(PATIENCE).unwrap();
        if e.request() != Some(request) {
            continue;
        }
        if let Event::Token { .. } = e {
            n += 1;
            if n == after {
                act();
            }
        }
        if e.is_final() {
            return (e, n);
        }
    }
}

/// Cancel mid-reply ends the request at once and closes the stream: the
/// server (one slot) is free for the next request.
#[test]
fn cancel_mid_reply_stops_and_the_server_is_free_again() {
    let server = LlamaServer::start(SMOL, &[]);
    let (mut h, rx, _) = engine(&server.url, None);
    h.generate(2, 0, chat("Write a long story about a dragon.", 2000, 3));
    let (fin, _) = long_reply_until(&rx, 2, 3, || h.cancel(2));
    let Event::Cancelled {
        stats: Some(stats), ..
    } = fin
    else {
        panic!("{fin:?}");
    };
    assert!(
        stats.n_generated >= 3 && stats.n_generated < 2000,
        "{stats:?}"
    );
    h.generate(3, 0, chat("Hi", 3, 1));
    let events = events_of(&rx, 3);
    assert!(
        matches!(events.last(), Some(Event::Done { .. })),
        "{events:?}"
    );
}

/// The server killed mid-reply: the tokens so far stand, the failure says
/// the connection dropped and that the partial reply is kept. It comes after
/// a cancelled reply (the TUI's sequence: Esc, a new message, the server dies).
#[test]
fn a_server_killed_mid_reply_fails_the_reply_keeping_its_tokens() {
    // --ignore-eos: no reply ends by itself before the kill.
    let mut server = LlamaServer::start(SMOL, &["--ignore-eos"]);
    let (mut h, rx, _) = engine(&server.url, None);
    h.generate(2, 0, chat("Write a long story about a dragon.", 2000, 3));
    let (fin, _) = long_reply_until(&rx, 2, 3, || h.cancel(2));
    assert!(matches!(fin, Event::Cancelled { .. }), "{fin:?}");
    h.generate(
        3,
        0,
        chat("Write another long story, about a knight.", 2000, 3),
    );
    let (fin, n) = long_reply_until(&rx, 3, 2, || server.kill());
    let Event::Failed {
        error: EngineError::Remote(RemoteError::Dropped { tokens, .. }),
        ..
    } = &fin
    else {
        panic!("{fin:?}");
    };
    assert_eq!(*tokens, n);
    assert!(
        fin_text(&fin).contains("The partial reply is kept"),
        "{}",
        fin_text(&fin)
    );
    // The next request says the server is gone.
    h.generate(4, 0, chat("Hi", 3, 1));
    let events = events_of(&rx, 4);
    let last = events.last().unwrap();
    assert!(
        fin_text(last).contains("cannot reach the server"),
        "{last:?}"
    );
}

/// A socket that answers like an OpenAI-compatible server with one model
/// (`m.gguf`, no `/props`) and answers the first POST with `reply`, a whole
/// HTTP response, then closes: for what a real server cannot be made to send
/// on purpose.
fn scripted_server(reply: String) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serve = std::thread::spawn(move || {
        for conn in listener.incoming().take(3) {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let (mut first, mut len) = (String::new(), 0);
            r.read_line(&mut first).unwrap();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if h.trim().is_empty() {
                    break;
                }
            }
            r.take(len as u64).read_to_end(&mut Vec::new()).unwrap();
            let answer = if first.starts_with("GET /v1/models") {
                json_response(r#"{"object":"list","data":[{"id":"m.gguf"}]}"#)
            } else if first.starts_with("GET") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            } else {
                reply.clone()
            };
            conn.write_all(answer.as_bytes()).unwrap();
            if first.starts_with("POST") {
                return;
            }
        }
    });
    (url, serve)
}

fn json_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `events` as one chunk of a chunked event stream; `terminated`: the
/// chunked body's last chunk follows (else the connection just closes).
fn sse_response(events: &str, terminated: bool) -> String {
    let chunk = format!("{:x}\r\n{events}\r\n", events.len());
    let end = if terminated { "0\r\n\r\n" } else { "" };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}{end}"
    )
}

/// The events of a chat reply to `reply` from a scripted server.
fn scripted_chat(reply: String) -> Vec<Event> {
    let (url, serve) = scripted_server(reply);
    let (mut h, rx, loaded) = engine(&url, None);
    assert!(matches!(loaded, Event::Loaded { .. }), "{loaded:?}");
    h.generate(2, 0, chat("Hi", 50, 2));
    let events = events_of(&rx, 2);
    serve.join().unwrap();
    events
}

/// A stream that ends without its end marker (no `finish_reason`, no
/// `[DONE]`) is never a finished reply: the server here is a socket that
/// answers like llama-server and then closes mid-reply, either with the
/// chunked body cut off or after a complete but unfinished one (the real
/// server cannot be made to stop at those points on purpose).
#[test]
fn a_stream_that_ends_without_its_end_marker_is_a_dropped_reply() {
    let token = r#"data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[{"id":5,"token":"Hi","bytes":[72,105],"logprob":-0.5,"top_logprobs":[{"id":5,"token":"Hi","bytes":[72,105],"logprob":-0.5}]}]}}]}"#;
    // (the body's last chunk sent, a `finish_reason` sent): only the reply
    // whose finish reason came is whole (its `[DONE]` alone is missing).
    for (terminated_body, finished) in [(false, false), (true, false), (true, true), (false, true)]
    {
        let finish = r#"data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}]}"#;
        let event = format!(
            "{token}\n\n{token}\n\n{}",
            if finished {
                format!("{finish}\n\n")
            } else {
                String::new()
            }
        );
        let events = scripted_chat(sse_response(&event, terminated_body));
        assert_eq!(steps(&events).len(), 2, "{events:?}");
        let last = events.last().unwrap();
        let dropped = matches!(
            last,
            Event::Failed {
                error: EngineError::Remote(RemoteError::Dropped { tokens: 2, .. }),
                ..
            }
        );
        let done = matches!(last, Event::Done { stats, .. } if stats.stop == StopReason::MaxTokens);
        assert!(
            if finished { done } else { dropped },
            "terminated body: {terminated_body}, finish reason: {finished}: {last:?}"
        );
    }
}

/// Issue 19: what some servers send beside the standard (a `data: null`
/// event, null lists, log-probabilities written `-Infinity` or `NaN`, an
/// error as a plain string, a whole JSON body where a stream was asked for)
/// ends in a whole reply, or in the server's own message: never a parser's
/// "invalid type: null" nor a reply "dropped after 0 token(s)".
#[test]
fn nulls_non_finite_numbers_string_errors_and_whole_bodies_end_cleanly() {
    let token = |text: &str, lp: &str| {
        format!(
            r#"data: {{"choices":[{{"finish_reason":null,"index":0,"delta":{{"content":"{text}"}},"logprobs":{{"content":[{{"token":"{text}","logprob":{lp},"top_logprobs":[{{"token":"{text}","logprob":{lp}}},{{"token":"Yo","logprob":-1.5}}]}}]}}}}]}}"#
        )
    };
    let stream = |events: &[&str]| {
        let mut body = events.join("\n\n");
        body.push_str("\n\ndata: [DONE]\n\n");
        sse_response(&body, true)
    };
    let (hi, bang) = (token("Hi", "-0.5"), token("!", "-0.25"));
    let finish =
        r#"data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"usage":null}"#;
    let whole = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":[{"token":"Hi","logprob":-0.5}]},{"token":"!","logprob":-0.25,"top_logprobs":null}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}}"#;
    let cases = [
        ("data: null", stream(&[&hi, "data: null", &bang, finish])),
        (
            "choices: null",
            stream(&[&hi, r#"data: {"choices":null}"#, &bang, finish]),
        ),
        (
            "top_logprobs: null",
            stream(&[
                &hi,
                &bang.replace(r#""top_logprobs":["#, r#""top_logprobs":null,"x":["#),
                finish,
            ]),
        ),
        (
            "-Infinity",
            stream(&[&hi, &token("!", "-Infinity"), finish]),
        ),
        ("NaN", stream(&[&hi, &token("!", "NaN"), finish])),
        ("a whole JSON body", json_response(whole)),
    ];
    for (what, reply) in cases {
        let events = scripted_chat(reply);
        let last = events.last().unwrap();
        assert!(
            matches!(last, Event::Done { stats, .. } if stats.stop == StopReason::Eog),
            "{what}: {}",
            fin_text(last)
        );
        let steps = steps(&events);
        let text: String = steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(text, "Hi!", "{what}");
        // A log-probability that is not a number is unknown; the rest of
        // the step (its token, the other candidates) is kept.
        if what == "-Infinity" || what == "NaN" {
            assert_eq!(steps[1].p(), None, "{what}");
            assert_eq!(steps[1].top().len(), 1, "{what}");
        } else {
            assert_eq!(steps[1].logit, Some(-0.25), "{what}");
        }
    }
    // An error as a plain string, mid-stream or as the whole body: the
    // server's message, and the tokens before it kept.
    for (what, reply, tokens) in [
        (
            "a string error mid-stream",
            stream(&[&hi, r#"data: {"error":"the model ran out of memory"}"#]),
            1,
        ),
        (
            "a string error as the body",
            json_response(r#"{"error":"the model ran out of memory"}"#),
            0,
        ),
    ] {
        let events = scripted_chat(reply);
        assert_eq!(steps(&events).len(), tokens, "{what}");
        let last = fin_text(events.last().unwrap());
        assert!(
            last.contains("HTTP 200: the model ran out of memory"),
            "{what}: {last}"
        );
    }
}

fn fin_text(e: &Event) -> String {
    match e {
        Event::Failed { error, .. } => error.to_string(),
        other => format!("{other:?}"),
    }
}

/// A server started with `--api-key`: a wrong key is refused in words that
/// name the fix and never the key; the right one works.
#[test]
fn a_wrong_api_key_is_refused_and_never_shown() {
    let server = LlamaServer::start(SMOL, &["--api-key", "right-key-123"]);
    let run = |var: &str, value: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"))
            .args([
                "run",
                "--server",
                &server.url,
                "--api-key-env",
                var,
                "-p",
                "Hi",
                "--max-tokens",
                "2",
            ])
            .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
            .env(var, value)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run("TS_TEST_KEY", "wrong-key-456");
    assert!(!ok);
    assert!(text.contains("refused the API key (HTTP 401)"), "{text}");
    assert!(text.contains("--api-key-env"), "{text}");
    assert!(!text.contains("wrong-key-456"), "the key leaked: {text}");
    let (ok, text) = run("TS_TEST_KEY", "right-key-123");
    assert!(ok, "{text}");
    assert!(!text.contains("right-key-123"), "the key leaked: {text}");
    // No key at all: the error says how to give one.
    let (out, err, ok) = run_on(&server.url, &["-p", "Hi"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("wants an API key") && err.contains("--api-key-env NAME"),
        "{err}"
    );
}

/// `info --server` says what the server reports (checked against the
/// server's own `/props` and `/v1/models`, and the file's own header): where
/// it runs, the context, the vocabulary, the template, and that it gives
/// log-probabilities with 20 candidates per token.
#[test]
fn info_over_the_server_reports_the_model_and_its_log_probabilities() {
    let server = LlamaServer::start(SMOL, &[]);
    let get = |path: &str| -> Value {
        let text = ureq::get(format!("{}{path}", server.url))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (props, models) = (get("/props"), get("/v1/models"));
    let meta = &models["data"][0]["meta"];
    let info = |args: &[&str]| {
        let mut all = vec!["info", "--server", server.url.as_str()];
        all.extend_from_slice(args);
        run_binary(&common::models_dir(), &all)
    };
    let (out, err, ok) = info(&["--format", "jsonl"]);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["server"], "llama-server");
    assert_eq!(r["url"], server.url.as_str());
    assert_eq!(r["build"], props["build_info"]);
    assert_eq!(r["model_path"], props["model_path"]);
    assert_eq!(r["n_ctx"], props["default_generation_settings"]["n_ctx"]);
    assert_eq!(r["n_ctx"], 2048, "the server was started with -c 2048");
    assert_eq!(r["n_vocab"], meta["n_vocab"]);
    assert_eq!(r["n_ctx_train"], meta["n_ctx_train"]);
    assert_eq!(r["slots"], props["total_slots"]);
    assert_eq!(r["chat_template"], props["chat_template"]);
    assert_eq!(
        (r["logprobs"].as_bool(), r["candidates"].as_u64()),
        (Some(true), Some(20))
    );
    // The vocabulary is the file's own.
    let (local, err, ok) = run_binary(&common::models_dir(), &["info", SMOL, "--format", "jsonl"]);
    assert!(ok, "{err}");
    let local: Value = serde_json::from_str(&local).unwrap();
    assert_eq!(r["n_vocab"], local["n_vocab"]);

    let (out, err, ok) = info(&["--model", "smollm2"]);
    assert!(ok, "a part of the id, any case: {err}");
    for line in [
        format!(
            "remote:            llama-server {} at {}",
            props["build_info"].as_str().unwrap(),
            server.url
        ),
        "context:           2048 tokens".to_string(),
        format!("vocabulary:        {} tokens", meta["n_vocab"]),
        "log-probabilities: yes, top 20 per token".to_string(),
        "chat template:     yes".to_string(),
        "sampler column:    none (its post_sampling_probs sends the sampler's".to_string(),
    ] {
        assert!(out.contains(&line), "{line:?} in:\n{out}");
    }
    let (_, err, ok) = info(&["--model", "llama-70b"]);
    assert!(!ok && err.contains("has no model \"llama-70b\""), "{err}");
    let url = format!("http://127.0.0.1:{}", free_port());
    let (_, err, ok) = run_binary(&common::models_dir(), &["info", "--server", &url]);
    assert!(
        !ok && err.contains(&format!("cannot reach the server at {url}")),
        "{err}"
    );
}

/// `info --server` on a server that wants a key: none, a wrong one (refused
/// in words, never shown), the right one.
#[test]
fn info_over_a_server_with_a_key() {
    let server = LlamaServer::start(SMOL, &["--api-key", "right-key-123"]);
    let info = |value: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"));
        cmd.args(["info", "--server", &server.url])
            .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml");
        if let Some(v) = value {
            cmd.args(["--api-key-env", "TS_INFO_KEY"])
                .env("TS_INFO_KEY", v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = info(None);
    assert!(
        !ok && text.contains("wants an API key") && text.contains("--api-key-env NAME"),
        "{text}"
    );
    let (ok, text) = info(Some("wrong-key-456"));
    assert!(
        !ok && text.contains("refused the API key (HTTP 401)"),
        "{text}"
    );
    assert!(!text.contains("wrong-key-456"), "the key leaked: {text}");
    let (ok, text) = info(Some("right-key-123"));
    assert!(ok && text.contains("log-probabilities: yes"), "{text}");
    assert!(!text.contains("right-key-123"), "the key leaked: {text}");
}

/// Nothing listens: the error names the URL and what to check.
#[test]
fn an_unreachable_server_is_an_error_in_words() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let (out, err, ok) = run_on(&url, &["-p", "Hi"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("cannot reach the server at {url}")),
        "{err}"
    );
    assert!(err.contains("is it running?"), "{err}");
    let (_, err, ok) = run_binary(
        &common::models_dir(),
        &["run", "--server", "localhost:8080", "-p", "Hi"],
    );
    assert!(!ok && err.contains("not a URL (http://HOST:PORT)"), "{err}");
}

/// A model the server does not list, step mode and scoring: refused with
/// what the server has or why it cannot be done.
#[test]
fn unknown_models_and_what_a_server_cannot_do_are_refused() {
    let server = LlamaServer::start(SMOL, &[]);
    let (out, err, ok) = run_on(&server.url, &["--model", "llama-70b", "-p", "Hi"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("has no model \"llama-70b\"") && err.contains(SMOL),
        "{err}"
    );
    let (out, err, ok) = run_on(
        &server.url,
        &["--model", "SmolLM2", "-p", "Hi", "--max-tokens", "2"],
    );
    assert!(ok, "a unique part of the id picks the model: {err}");
    assert!(out.contains("remote llama-server"), "{out}");

    let (mut h, rx, _) = engine(&server.url, None);
    let mut req = chat("Hi", 4, 3);
    req.paused = true;
    h.generate(2, 0, req);
    let events = events_of(&rx, 2);
    let text = fin_text(events.last().unwrap());
    assert!(
        text.contains("step mode needs the model's logits"),
        "{text}"
    );
    h.score(
        3,
        0,
        tokenscope::engine::ScoreRequest {
            text: "Hello there".into(),
            bos: true,
            top_k_inspect: 3,
        },
    );
    let text = fin_text(events_of(&rx, 3).last().unwrap());
    assert!(
        text.contains("scoring") && text.contains("needs the model's logits"),
        "{text}"
    );
    h.rollouts(
        4,
        0,
        tokenscope::engine::RolloutRequest {
            tokens: vec![1, 2, 3],
            n: 3,
            m: 4,
            sampling: tokenscope::engine::SamplingParams::greedy(),
            top_k_inspect: 0,
        },
    );
    let text = fin_text(events_of(&rx, 4).last().unwrap());
    assert!(
        text.contains("rolling out the top candidates needs the model's logits"),
        "{text}"
    );
}

/// A server that takes the connection and then says nothing: the request
/// fails as timed out, naming the URL and what it was waiting for.
#[test]
fn a_silent_server_times_out() {
    // A real socket whose backlog takes the connection; nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut target = RemoteTarget::new(&url, None).unwrap();
    target.timeout = Duration::from_secs(1);
    let (tx, rx) = std::sync::mpsc::channel();
    // The server's only model.
    let model = ModelRef::Remote {
        url: target.url.clone(),
        model: String::new(),
    };
    let mut h = EngineHandle::spawn_remote(target, tx, |e| e);
    h.load(1, 0, model, Default::default());
    let e = rx.recv_timeout(PATIENCE).unwrap();
    let text = fin_text(&e);
    assert!(
        matches!(
            &e,
            Event::Failed {
                error: EngineError::Remote(RemoteError::Timeout { .. }),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        text.contains(&url) && text.contains("did not answer within 1 s"),
        "{text}"
    );
    assert!(text.contains("GET /v1/models"), "{text}");
}

/// `run --format jsonl` on `args`, locally (`--model`) and through the
/// server: the token lines of each.
fn local_and_remote(server: &LlamaServer, args: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let model = common::model(SMOL);
    let mut local = vec!["run", "--model", model.to_str().unwrap()];
    local.extend_from_slice(args);
    let (out, err, ok) = run_binary(&common::models_dir(), &local);
    assert!(ok, "local run failed: {err}");
    let local = token_lines(&out);
    let (out, err, ok) = run_on(&server.url, args);
    assert!(ok, "remote run failed: {err}");
    (local, token_lines(&out))
}

/// Asserts two traces have the same tokens: count, ids, bytes, text, and
/// each step's top candidate and p within `tol` (the server is another build
/// of llama.cpp with other CPU kernels: on SmolLM2 Q4_1 its probabilities
/// differ from the local engine's by up to ~0.06, and the order of close
/// lesser candidates with them).
fn same_trace(local: &[Value], remote: &[Value], tol: f64) {
    let ids = |t: &[Value]| t.iter().map(|v| v["id"].clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(local),
        ids(remote),
        "the same token ids, one entry per token"
    );
    for (i, (a, b)) in local.iter().zip(remote).enumerate() {
        assert_eq!(a["index"], b["index"], "token {i}");
        assert_eq!(a["text"], b["text"], "token {i}'s text");
        assert_eq!(a["bytes"], b["bytes"], "token {i}'s own bytes");
        let (pa, pb) = (a["p"].as_f64().unwrap(), b["p"].as_f64().unwrap());
        assert!((pa - pb).abs() < tol, "token {i}: p {pa} vs {pb}");
        let top_a = a["top"].as_array().unwrap();
        let top_b = b["top"].as_array().unwrap();
        assert_eq!(top_a.len(), top_b.len(), "token {i}: candidates");
        assert_eq!(top_a[0]["id"], top_b[0]["id"], "token {i}: top candidate");
    }
}

/// Steps of a local trace before the first whose top two candidates are
/// closer than the two builds' difference (0.1): from there the server's
/// build may take the other one.
fn before_near_tie(trace: &[Value]) -> usize {
    let margin = |t: &Value| {
        let top = t["top"].as_array().unwrap();
        top[0]["p"].as_f64().unwrap() - top[1]["p"].as_f64().unwrap()
    };
    trace
        .iter()
        .position(|t| margin(t) < 0.1)
        .unwrap_or(trace.len())
}

/// llama-server streams a character split over byte tokens as one entry
/// (the last token's id and distribution, the whole character's bytes):
/// tokenscope rebuilds one step per token, each with its own id, bytes and
/// distribution, so a remote trace equals the local engine's at temperature
/// 0 (Chinese and emoji, raw and chat).
#[test]
fn characters_split_over_byte_tokens_come_back_one_step_per_token() {
    let server = LlamaServer::start(SMOL, &[]);
    let common_args = [
        "--temp",
        "0",
        "--candidates",
        "5",
        "--format",
        "jsonl",
        "--max-tokens",
        "20",
    ];
    for prompt in [
        "Chinese: 你好，世界！\nChinese: 你好，世界！\nChinese:",
        "Emoji: 😀🎉🐱\nEmoji: 😀🎉🐱\nEmoji:",
    ] {
        let mut args = vec!["--raw", "-p", prompt];
        args.extend_from_slice(&common_args);
        let (local, remote) = local_and_remote(&server, &args);
        assert_eq!(
            local.len(),
            20,
            "{prompt:?}: the local reply runs to the limit"
        );
        // The prompt makes the model repeat a split character: the test
        // covers what it is about.
        assert!(
            local
                .iter()
                .any(|t| t["text"] == "" && t["bytes"].as_array().unwrap().len() < 4),
            "{prompt:?}: no token ends inside a character"
        );
        // One entry per token, to the limit, with its own bytes.
        assert_eq!(remote.len(), 20, "{prompt:?}: one entry per token");
        let bytes: Vec<u8> = remote
            .iter()
            .flat_map(|t| t["bytes"].as_array().unwrap().clone())
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let text: String = remote.iter().map(|t| t["text"].as_str().unwrap()).collect();
        assert!(
            bytes.starts_with(text.as_bytes()),
            "{prompt:?}: bytes and text agree"
        );
        // The local engine's trace, up to the first near-tie (see below).
        let n = before_near_tie(&local);
        assert!(n >= 10, "{prompt:?}: a near-tie at step {n}");
        same_trace(&local[..n], &remote[..n], 0.1);
        // The server's own numbers, for every step: the greedy token is its
        // top candidate there, and the candidates equal what it reports for
        // that position when asked directly (one ASCII token drawn so that
        // it reports at all), streamed and rebuilt steps alike.
        let mut ids = vec![json!(prompt)];
        for (i, step) in remote.iter().enumerate() {
            let direct = server.post(
                "/completion",
                &json!({"prompt": ids, "n_predict": 1, "n_probs": 5, "temperature": 0,
                        "grammar": "root ::= [ -~]*"}),
            );
            let theirs = direct["completion_probabilities"][0]["top_logprobs"]
                .as_array()
                .expect("the server's candidates")
                .clone();
            assert_eq!(step["id"], theirs[0]["id"], "{prompt:?} token {i}");
            let ours = step["top"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{prompt:?} token {i}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!(a["id"], b["id"], "{prompt:?} token {i}");
                let (pa, pb) = (
                    a["p"].as_f64().unwrap(),
                    b["logprob"].as_f64().unwrap().exp(),
                );
                assert!((pa - pb).abs() < 2e-3, "{prompt:?} token {i}: {a} vs {b}");
            }
            ids.push(step["id"].clone());
        }
    }
    // Chat, through the server's template (the reply goes on through
    // `/completion` after a rebuilt character), up to the first step where
    // the local engine's top two candidates are closer than the builds'
    // difference (there the other build may take the other one).
    let mut args = vec!["-p", "Reply with only this emoji: 🐱"];
    args.extend_from_slice(&common_args);
    let (local, remote) = local_and_remote(&server, &args);
    let n = before_near_tie(&local);
    let split = local[..n].iter().filter(|t| t["text"] == "").count();
    assert!(
        split >= 3,
        "the chat reply splits characters early: {n} steps, {split} split"
    );
    same_trace(&local[..n], &remote[..n.min(remote.len())], 0.1);
}
