//! A real llama-server for the remote-engine tests: fetched like the demo
//! models (`tokenscope::llama_server`), started on a free loopback port
//! serving a demo model, killed when the guard drops.

use std::path::PathBuf;
use std::time::Duration;

use tokenscope::paths::Paths;

/// The `llama-server` executable, fetched on first use (like `make models`).
pub fn server_exe() -> PathBuf {
    let paths = Paths::resolve();
    let mut opts = tokenscope::demo::FetchOptions::new(&paths.models_dir);
    opts.wheels_dir = paths.wheels_dir();
    tokenscope::llama_server::fetch_server(&paths.data_dir, &opts, &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch llama-server for the tests: {e}"))
}

pub fn free_port() -> u16 {
    tokenscope::llama_server::free_port().expect("a free loopback port")
}

/// A running llama-server with its log directory; killed on drop.
pub struct LlamaServer {
    server: tokenscope::llama_server::LlamaServer,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// llama-server on demo model `model` (2048 context, 2 threads, one
    /// slot) with `extra` arguments, ready to answer.
    pub fn start(model: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec!["-c", "2048", "-t", "2", "-np", "1", "--no-webui"];
        args.extend_from_slice(extra);
        let server = tokenscope::llama_server::LlamaServer::start(
            &server_exe(),
            &super::model(model),
            &args,
            dir.path(),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self {
            port: server.port,
            url: server.url.clone(),
            server,
            _dir: dir,
        }
    }

    /// Kills the server now (a server dying mid-reply).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// `POST path` with a JSON body, answered as JSON (the test's own client).
    pub fn post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let text = ureq::post(format!("{}{path}", self.url))
            .send(body.to_string())
            .expect("the server answers")
            .into_body()
            .read_to_string()
            .expect("a body");
        serde_json::from_str(&text).expect("JSON")
    }
}
