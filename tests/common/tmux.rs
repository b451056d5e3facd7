//! A private tmux server running the real binary, for end-to-end tests
//! that read the screen (see tests/tui_e2e.rs).

use std::process::Command;
use std::time::{Duration, Instant};

/// Prints `icanon=on isig=on echo=on` for a terminal in cooked mode.
const MODES: &str = r#"for f in icanon isig echo; do if stty -a | tr ' ' '\n' | grep -qx $f; then printf "$f=on "; else printf "$f=off "; fi; done; echo"#;

pub struct Tmux {
    socket: String,
    /// The app's private home when the test gives none (conversations and
    /// logs then never go to the user's data directory).
    _home: Option<tempfile::TempDir>,
}

impl Tmux {
    /// A private tmux server running `env tokenscope args; echo EXITED:$?`
    /// (with a private TOKENSCOPE_HOME, and the demo models' directory, when
    /// `env` sets no home; no other tool's store unless `env` sets
    /// TOKENSCOPE_SOURCES; with TOKENSCOPE_TEST_FRAMES, see [`Tmux::wait`]), then
    /// the terminal's line modes and `STTY-END`, in a `cols`×`rows` window, so
    /// the test can check the terminal after exit.
    pub fn start(name: &str, env: &str, args: &str, cols: u16, rows: u16) -> Tmux {
        let mut env = env.to_string();
        let home = (!env.contains("TOKENSCOPE_HOME=")).then(|| tempfile::tempdir().unwrap());
        if let Some(h) = &home {
            env = format!("TOKENSCOPE_HOME='{}' {env}", h.path().display());
            if !env.contains("TOKENSCOPE_MODELS_DIR=") {
                let models = super::models_dir();
                env = format!("TOKENSCOPE_MODELS_DIR='{}' {env}", models.display());
            }
        }
        // The machine's other tools' stores (Ollama, the hub cache…) stay
        // out of what the test sees, unless it says otherwise.
        if !env.contains("TOKENSCOPE_SOURCES=") {
            env = format!("TOKENSCOPE_SOURCES= {env}");
        }
        // First: `env` may end with a command that runs the app (unshare …).
        env = format!("TOKENSCOPE_TEST_FRAMES=1 {env}");
        let t = Tmux {
            socket: format!("tokenscope-{name}-{}", std::process::id()),
            _home: home,
        };
        let script = format!(
            "{env} '{}' {args}; echo EXITED:$?; {MODES}; echo STTY-END; sleep 120",
            env!("CARGO_BIN_EXE_tokenscope")
        );
        let (cols, rows) = (cols.to_string(), rows.to_string());
        t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &cols,
            "-y",
            &rows,
            &script,
        ]);
        t
    }

    /// Waits for the app to exit with `code`; the shell after it must find the
    /// terminal as it was: cooked mode, main screen, cursor shown, no mouse
    /// reporting. Waits for `STTY-END`, printed after `stty -a`'s output.
    pub fn assert_exited_sane(&self, code: i32) -> String {
        let marker = format!("EXITED:{code}");
        let s = self.wait("the app to exit and stty to print", 30, |s| {
            s.contains("STTY-END")
        });
        assert!(s.contains(&marker), "expected {marker}: {s}");
        let stty = s.split(&marker).nth(1).unwrap_or("");
        assert!(
            stty.contains("icanon=on isig=on echo=on"),
            "terminal left in raw mode:\n{s}"
        );
        let modes = self.cmd(&[
            "display-message",
            "-p",
            "-t",
            "e2e",
            "alt=#{alternate_on} cursor=#{cursor_flag} mouse=#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}#{mouse_sgr_flag}",
        ]);
        assert_eq!(
            modes.trim(),
            "alt=0 cursor=1 mouse=0000",
            "terminal modes left on after exit:\n{s}"
        );
        s
    }

    /// Pid of the app: the child of the pane's shell.
    pub fn app_pid(&self) -> i32 {
        let shell = self.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
        let shell = shell.trim();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
                .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                return pid.parse().expect("a pid");
            }
            assert!(Instant::now() < deadline, "the app never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/ensure-deps.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen, and whether it is whole: no frame of the app half written.
    /// The app writes each frame with line wrap off (TOKENSCOPE_TEST_FRAMES);
    /// tmux reports the mode and the screen in one command, between two reads
    /// of the app's output, so a capture with line wrap on shows the frames
    /// written so far, all of each. A capture in the middle of a frame has the
    /// frame's top new and its bottom, the status bar among it, from the frame
    /// before: "idle" from before a key next to what the key started.
    fn screen(&self) -> (bool, String) {
        let out = self.cmd(&[
            "display-message",
            "-p",
            "-t",
            "e2e",
            "#{wrap_flag}",
            ";",
            "capture-pane",
            "-p",
            "-t",
            "e2e",
        ]);
        match out.split_once('\n') {
            Some((wrap, screen)) => (wrap == "1", screen.to_string()),
            None => (false, out),
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    pub fn type_text(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "e2e", "-l", text]);
    }

    /// Polls the screen until `pred` holds on a whole one (see
    /// [`Tmux::screen`]); panics with the last screen if it never does.
    pub fn wait(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (whole, s) = self.screen();
            if whole && pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                let half = if whole { "" } else { " (a frame half written)" };
                panic!("timed out waiting for {what}; screen{half}:\n{s}");
            }
            // Soon again when the app was writing a frame.
            std::thread::sleep(Duration::from_millis(if whole { 200 } else { 20 }));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

pub fn status_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

pub fn idle(screen: &str) -> bool {
    status_line(screen).contains("idle")
}

/// The screen's lines joined by spaces (a notice wraps).
pub fn flat(screen: &str) -> String {
    screen
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
}
