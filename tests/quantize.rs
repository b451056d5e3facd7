//! `tokenscope quantize` on the real demo models: the output loads and
//! `info` shows its type; an existing output is kept without `--force`; bad
//! input is a clear error; an interrupted quantize (SIGINT, SIGKILL) leaves
//! no file at the output.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::demo_home as home;

fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenscope"));
    c.args(args)
        .env("TOKENSCOPE_HOME", home)
        .env("TOKENSCOPE_CONFIG", home.join("no-config.toml"))
        .env_remove("TOKENSCOPE_MODEL")
        .env_remove("TOKENSCOPE_MODELS_DIR");
    c
}

fn tokenscope(home: &Path, args: &[&str]) -> Output {
    cmd(home, args).output().expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Files in `dir` other than the two demo links.
fn made_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != common::SMOL && n != common::GEMMA)
        .collect();
    v.sort();
    v
}

fn assert_error(out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn quantize_output_loads_and_info_shows_its_type_and_overwrite_needs_force() {
    let h = home();
    let models = h.path().join("models");
    let out = tokenscope(
        h.path(),
        &["quantize", "smol", "--type", "q4_0", "--allow-requantize"],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("tensor 272/272"), "progress per tensor: {err}");
    assert!(
        err.contains("can only lose against"),
        "says why a requantized file can only lose: {err}"
    );
    // The default name: the input's stem without its type, in the models dir.
    let made = models.join("SmolLM2-135M-Instruct.Q4_0.gguf");
    assert_eq!(
        made_files(&models),
        ["SmolLM2-135M-Instruct.Q4_0.gguf"],
        "no temporary file left"
    );
    assert!(text(&out.stdout).contains("Q4_0"), "{}", text(&out.stdout));

    let info = tokenscope(h.path(), &["info", made.to_str().unwrap()]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let card = text(&info.stdout);
    assert!(
        card.lines()
            .any(|l| l.contains("Q4_0") && l.to_lowercase().contains("quant")),
        "{card}"
    );

    // It loads and generates.
    let run = tokenscope(
        h.path(),
        &[
            "run",
            "-m",
            made.to_str().unwrap(),
            "-p",
            "Hi",
            "--max-tokens",
            "3",
            "--temp",
            "0",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));

    // An existing output is kept without --force, replaced with it.
    let before = std::fs::metadata(&made).unwrap().modified().unwrap();
    let again = tokenscope(
        h.path(),
        &[
            "quantize",
            "Instruct.Q4_1",
            "--type",
            "Q4_0",
            "--allow-requantize",
        ],
    );
    assert_error(&again, &["already exists", "--force"]);
    assert_eq!(
        std::fs::metadata(&made).unwrap().modified().unwrap(),
        before
    );
    let forced = tokenscope(
        h.path(),
        &[
            "quantize",
            "Instruct.Q4_1",
            made.to_str().unwrap(),
            "--type",
            "Q5_0",
            "--allow-requantize",
            "--force",
        ],
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let info = tokenscope(h.path(), &["info", made.to_str().unwrap()]);
    assert!(
        text(&info.stdout).contains("Q5_0"),
        "{}",
        text(&info.stdout)
    );
    assert_eq!(made_files(&models), ["SmolLM2-135M-Instruct.Q4_0.gguf"]);
}

#[test]
fn bad_quantize_requests_are_clear_errors_and_write_nothing() {
    let h = home();
    let models = h.path().join("models");
    let q = |args: &[&str]| {
        let mut v = vec!["quantize"];
        v.extend_from_slice(args);
        tokenscope(h.path(), &v)
    };
    assert_error(
        &q(&["smol", "--type", "Q9_X"]),
        &[
            "unknown quantization type \"Q9_X\"",
            "Q4_K_M",
            "--type help",
        ],
    );
    // A type that needs an importance matrix is refused with that reason, not as unknown.
    assert_error(
        &q(&["smol", "--type", "IQ2_XXS", "--allow-requantize"]),
        &[
            "IQ2_XXS needs an importance matrix",
            "sample text",
            "llama-imatrix",
            "Q4_K_M",
        ],
    );
    assert_error(
        &q(&["smol", "--type", "TQ1_0", "--allow-requantize"]),
        &["TQ1_0 is a ternary type"],
    );
    assert_error(
        &q(&["/nonexistent/m.gguf", "--type", "Q4_0"]),
        &["does not exist"],
    );
    assert_error(
        &q(&["smol", "--type", "Q4_0"]),
        &[
            "already quantized (Q4_1)",
            "--allow-requantize",
            "only lose",
        ],
    );
    assert_error(
        &q(&[
            "smol",
            "/nonexistent/dir/out.gguf",
            "--type",
            "Q4_0",
            "--allow-requantize",
        ]),
        &["cannot write to /nonexistent/dir"],
    );
    assert_error(
        &q(&[
            "smol",
            models.to_str().unwrap(),
            "--type",
            "Q4_0",
            "--allow-requantize",
        ]),
        &["is a directory"],
    );
    let smol = models.join(common::SMOL);
    assert_error(
        &q(&[
            "smol",
            smol.to_str().unwrap(),
            "--type",
            "Q4_0",
            "--allow-requantize",
            "--force",
        ]),
        &["would overwrite the input"],
    );
    let help = q(&["--type", "help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Q2_K"));
    assert!(made_files(&models).is_empty(), "{:?}", made_files(&models));
}

/// Starts a quantize of Gemma on one thread and waits until it is a few
/// tensors in (its progress on stderr); returns the child and the output.
fn quantize_under_way(h: &Path) -> (std::process::Child, PathBuf) {
    let out = h.join("models").join("g.Q8_0.gguf");
    let mut child = cmd(
        h,
        &[
            "quantize",
            "gemma",
            out.to_str().unwrap(),
            "--type",
            "Q8_0",
            "--allow-requantize",
            "--threads",
            "1",
        ],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("the quantize reports progress before it ends")
            .unwrap();
        if line.starts_with("tensor 3/") {
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, out)
}

#[test]
fn an_interrupted_quantize_leaves_no_file() {
    let h = home();
    let models = h.path().join("models");

    // Ctrl-C: a clean stop, the temporary file removed.
    let (child, out) = quantize_under_way(h.path());
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let done = child.wait_with_output().unwrap();
    assert!(!done.status.success());
    assert!(!out.exists());
    assert!(made_files(&models).is_empty(), "{:?}", made_files(&models));

    // SIGKILL: nothing at the output; the quantizer process dies with it,
    // and the next quantize to that output clears what it left.
    let (mut child, out) = quantize_under_way(h.path());
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(!out.exists());
    let left = made_files(&models);
    assert!(
        left.iter().all(|n| n.ends_with(".partial")),
        "only a hidden temporary file may remain: {left:?}"
    );
    let fresh = tokenscope(
        h.path(),
        &[
            "quantize",
            "smol",
            out.to_str().unwrap(),
            "--type",
            "Q4_0",
            "--allow-requantize",
        ],
    );
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert_eq!(made_files(&models), ["g.Q8_0.gguf"]);
}

#[test]
fn a_file_that_aborts_llama_cpp_is_reported_and_leaves_nothing() {
    // Passes our header checks, then trips GGML_ASSERT(n_layer_all > 0)
    // inside llama.cpp (as in engine_isolation): the quantizer process
    // aborts, `quantize` reports it.
    let h = home();
    let models = h.path().join("models");
    let bad = h.path().join("zero-layers.gguf");
    common::gguf_edit::copy_with_metadata(
        &common::model(common::SMOL),
        &bad,
        &[("llama.block_count", common::gguf_edit::Meta::U32(0))],
        &[],
    )
    .unwrap();
    let out = models.join("z.Q4_0.gguf");
    let r = tokenscope(
        h.path(),
        &[
            "quantize",
            bad.to_str().unwrap(),
            out.to_str().unwrap(),
            "--type",
            "Q4_0",
            "--allow-requantize",
        ],
    );
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("zero-layers.gguf")
            && (err.contains("crashed") || err.contains("could not quantize")),
        "{err}"
    );
    assert!(!out.exists());
    assert!(made_files(&models).is_empty(), "{:?}", made_files(&models));
}

#[test]
fn a_disk_that_fills_up_mid_write_is_a_clear_error_and_leaves_nothing() {
    // A file-size limit (as `ulimit -f`) makes the quantizer's writes fail
    // past 8 MiB, as a full disk does part way through: the free-space check
    // up front passes, the write fails.
    let h = home();
    let models = h.path().join("models");
    let out = models.join("s.Q8_0.gguf");
    let mut c = cmd(
        h.path(),
        &[
            "quantize",
            "smol",
            out.to_str().unwrap(),
            "--type",
            "Q8_0",
            "--allow-requantize",
        ],
    );
    common::limit_file_size(&mut c, 8 << 20);
    let done = c.output().unwrap();
    assert_error(
        &done,
        &[
            "the file-size limit of 8.0 MiB (ulimit -f) was reached",
            "raise the limit or choose a smaller type",
            "nothing was left there",
        ],
    );
    assert!(
        !text(&done.stderr).contains("crashed"),
        "{}",
        text(&done.stderr)
    );
    assert!(!out.exists());
    assert!(made_files(&models).is_empty(), "{:?}", made_files(&models));
}

/// The number after `, ` and before ` bits per weight` in `quantize`'s first
/// line for the output ("5.14").
fn printed_bpw(stdout: &str) -> String {
    let first = stdout.lines().next().unwrap_or_default();
    let before = first.split(" bits per weight").next().unwrap();
    before.rsplit(", ").next().unwrap().to_string()
}

#[test]
fn quantize_reports_the_tensor_types_llama_cpp_really_wrote() {
    // SmolLM2's rows are 576 weights wide, not a multiple of the 256-weight
    // blocks of the k-quants: its "Q2_K" holds no Q2_K tensor at all, the
    // same mix as its "Q3_K_S".
    let h = home();
    let models = h.path().join("models");
    let q = |ty: &str| {
        tokenscope(
            h.path(),
            &[
                "quantize",
                "Instruct.Q4_1",
                "--type",
                ty,
                "--allow-requantize",
            ],
        )
    };
    let q3s = q("Q3_K_S");
    assert!(q3s.status.success(), "{}", text(&q3s.stderr));
    let q2 = q("Q2_K");
    let (out, err) = (text(&q2.stdout), text(&q2.stderr));
    assert!(q2.status.success(), "{err}");
    let made = models.join("SmolLM2-135M-Instruct.Q2_K.gguf");
    let card = tokenscope::catalog::read_card(&made).unwrap();
    assert!(
        card.mix.types.iter().all(|t| t.ty != "Q2_K"),
        "{:?}",
        card.mix
    );
    assert!(
        out.starts_with(&format!(
            "{}: Q2_K requested · mostly Q4_0,",
            made.display()
        )),
        "{out}"
    );
    // Each type the file holds, with its tensor count, as the file says.
    for t in &card.mix.types {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!(" {:<7} {:>4} tensors", t.ty, t.tensors))),
            "{:?} in {out}",
            t
        );
    }
    assert!(
        out.contains("llama.cpp fell back to another type on")
            && out.contains("× Q2_K → Q4_0 (rows of 576 weights, Q2_K's blocks hold 256)"),
        "{out}"
    );
    assert!(
        err.contains(
            "warning: SmolLM2-135M-Instruct.Q2_K.gguf holds the same tensor types as \
             SmolLM2-135M-Instruct.Q3_K_S.gguf (Q3_K_S requested · mostly Q4_0)"
        ),
        "{err}"
    );

    // `info` and `models` show the same make-up and the same bits per weight.
    let bpw = printed_bpw(&out);
    let info = text(&tokenscope(h.path(), &["info", made.to_str().unwrap()]).stdout);
    for want in [
        "quantization:    Q2_K requested · mostly Q4_0".to_string(),
        format!("bits per weight: {bpw}"),
        "tensor types:    Q4_0".into(),
        "weights, not a multiple of the 256-weight blocks of Q2_K".into(),
        "made from:       SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1), by tokenscope quantize".into(),
    ] {
        assert!(info.contains(&want), "missing {want:?} in\n{info}");
    }
    let table = text(&tokenscope(h.path(), &["models"]).stdout);
    let row = table
        .lines()
        .find(|l| l.contains("Instruct.Q2_K.gguf"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("Q2_K requested · mostly Q4_0") && row.contains(&format!(" {bpw} ")),
        "{table}"
    );

    // The alias Q4_K is Q4_K_M; on this model it is mostly Q5_0, larger than its input.
    let q4k = q("Q4_K");
    let (out, err) = (text(&q4k.stdout), text(&q4k.stderr));
    assert!(q4k.status.success(), "{err}");
    assert!(
        out.contains("SmolLM2-135M-Instruct.Q4_K_M.gguf: Q4_K_M requested · mostly Q5_0"),
        "{out}"
    );
    assert!(
        err.contains("warning: the result (")
            && err.contains("is larger than its input SmolLM2-135M-Instruct.Q4_1.gguf"),
        "{err}"
    );
}

#[test]
fn bits_per_weight_are_llama_cpps_and_the_picker_puts_the_original_first() {
    // A Q8_0 made from the Q4_1 is larger, yet the Q4_1 is its original.
    let h = home();
    let models = h.path().join("models");
    let input = tokenscope::catalog::read_card(&models.join(common::SMOL)).unwrap();
    let plan = tokenscope::commands::quantize::plan(
        &tokenscope::commands::quantize::Request {
            input: input.path.clone(),
            ty: "Q8_0".into(),
            allow_requantize: true,
            ..Default::default()
        },
        &models,
    )
    .unwrap();
    let outcome = tokenscope::commands::quantize::run(
        Path::new(env!("CARGO_BIN_EXE_tokenscope")),
        &plan,
        |_| {},
    )
    .unwrap();
    // One definition, as llama.cpp's quantizer counts it (tensor data × 8 / weights).
    let (_, in_bpw, _, out_bpw) = outcome.sizes.expect("llama.cpp logged its sizes");
    let two = |b: f64| format!("{b:.2}");
    assert_eq!(two(input.bits_per_weight().unwrap()), two(in_bpw));
    assert_eq!(two(outcome.card.bits_per_weight().unwrap()), two(out_bpw));
    assert!(outcome.card.made_from.is_some());

    let entries =
        tokenscope::tui::models::discover(&tokenscope::catalog::Places::own(vec![models.clone()]));
    let smol: Vec<_> = entries
        .iter()
        .filter(|e| e.file_name.starts_with("SmolLM2"))
        .collect();
    let names: Vec<&str> = smol.iter().map(|e| e.file_name.as_str()).collect();
    assert_eq!(
        names,
        [common::SMOL, "SmolLM2-135M-Instruct.Q8_0.gguf"],
        "the original first"
    );
    assert_eq!(smol[1].bpw.map(two), Some(two(out_bpw)));
}
