//! The models other tools already have on disk, laid out exactly as each tool
//! lays them out, with the real demo models (symbolic links to them, as the
//! hub cache itself links snapshots to blobs): Ollama's manifests and
//! `sha256-<hex>` blobs, the Hugging Face hub cache's `refs/main` and
//! snapshots, LM Studio's publisher/repository folders, a split model, a
//! manifest whose blob is missing, a store that cannot be read and a
//! multimodal projector. Listed through the library and through the real
//! binary (`models`, `info`, `run --model name:tag`), with `HOME` and every
//! tool's variable pointed into a temporary directory so that the
//! machine's own stores are never read.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenscope::catalog::{CatalogError, ModelCard, Places, Store, StoreDir};

/// Ollama's manifest for a model layer of `digest` and `size`, with the
/// layers `ollama pull` writes besides it (template, license, params) and,
/// with `projector`, a vision projector layer.
fn manifest(digest: &str, size: u64, projector: bool) -> String {
    let mut layers = vec![serde_json::json!({
        "mediaType": "application/vnd.ollama.image.model",
        "digest": digest,
        "size": size,
    })];
    if projector {
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.ollama.image.projector",
            "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
            "size": 1,
        }));
    }
    for t in ["template", "license", "params"] {
        layers.push(serde_json::json!({
            "mediaType": format!("application/vnd.ollama.image.{t}"),
            "digest": format!("sha256:{t}00000000000000000000000000000000000000000000000000000000"),
            "size": 10,
        }));
    }
    serde_json::to_string_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1c0f1",
            "size": 487,
        },
        "layers": layers,
    }))
    .unwrap()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn link(target: &Path, at: &Path) {
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(target, at).unwrap();
}

/// The sha256 of a file, in hex (Ollama names blobs by it; tokenscope does
/// not check it: the name only has to match the manifest).
fn sha256_hex(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A home directory holding every tool's store, laid out as each tool does.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        let smol = common::model(common::SMOL);
        let qwen = common::model(common::QWEN);
        let gemma = common::model(common::GEMMA);

        // Ollama: ~/.ollama/models/{manifests,blobs}.
        let ollama = h.join(".ollama/models");
        let smol_hex = sha256_hex(&smol);
        link(&smol, &ollama.join(format!("blobs/sha256-{smol_hex}")));
        let m = ollama.join("manifests/registry.ollama.ai");
        let size = fs::metadata(&smol).unwrap().len();
        write(
            &m.join("library/smollm2/135m"),
            &manifest(&format!("sha256:{smol_hex}"), size, false),
        );
        // A model in a user's namespace, tagged latest, with a projector layer.
        let qwen_hex = "9f1d2c3b4a5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
        link(&qwen, &ollama.join(format!("blobs/sha256-{qwen_hex}")));
        write(
            &m.join("someone/qwen-coder/latest"),
            &manifest(&format!("sha256:{qwen_hex}"), 491_400_064, true),
        );
        // A pull that never finished: the manifest, no blob.
        write(
            &m.join("library/ghost/1b"),
            &manifest(
                "sha256:dead00000000000000000000000000000000000000000000000000000000beef",
                1,
                false,
            ),
        );
        // Another registry (`ollama pull hf.co/…`).
        write(
            &ollama.join("manifests/hf.co/bartowski/smollm2-gguf/Q4_1"),
            &manifest(&format!("sha256:{smol_hex}"), size, false),
        );

        // The hub cache: blobs, snapshots linking into them, refs/main.
        let repo = h.join(".cache/huggingface/hub/models--Qwen--Qwen2.5-Coder-0.5B-Instruct-GGUF");
        link(&qwen, &repo.join("blobs/a1b2c3"));
        write(
            &repo.join("refs/main"),
            "1111111111111111111111111111111111111111",
        );
        let file = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
        for rev in [
            "1111111111111111111111111111111111111111",
            "0000000000000000000000000000000000000000",
        ] {
            link(
                Path::new("../../blobs/a1b2c3"),
                &repo.join(format!("snapshots/{rev}/{file}")),
            );
        }
        // Only in the older revision: listed too, once.
        link(
            Path::new("../../../blobs/a1b2c3"),
            &repo.join("snapshots/0000000000000000000000000000000000000000/old/qwen-old.gguf"),
        );
        // A projector next to the model: not a chat model.
        link(
            Path::new("../../blobs/a1b2c3"),
            &repo.join("snapshots/1111111111111111111111111111111111111111/mmproj-f16.gguf"),
        );
        fs::create_dir_all(h.join(".cache/huggingface/hub/datasets--x--y/snapshots/r")).unwrap();

        // LM Studio: ~/.lmstudio/models/<publisher>/<repo>/*.gguf, a split model.
        let lms = h.join(".lmstudio/models");
        link(
            &gemma,
            &lms.join("lmstudio-community/gemma-3-270m-it-GGUF/gemma-3-270m-q4_k_m.gguf"),
        );
        let split = lms.join("bartowski/SmolLM2-135M-Instruct-GGUF");
        link(
            &smol,
            &split.join("SmolLM2-135M-Instruct-Q4_1-00001-of-00002.gguf"),
        );
        write(
            &split.join("SmolLM2-135M-Instruct-Q4_1-00002-of-00002.gguf"),
            "the second part",
        );

        // llama.cpp's cache: a file where the directory should be.
        write(&h.join("not-a-dir"), "x");
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every store of this home, as the binary finds them with HOME here.
    fn places(&self) -> Places {
        let h = self.path();
        let d = |store, rel: &str| StoreDir {
            store,
            root: h.join(rel),
        };
        Places {
            dirs: vec![h.join("ts/models")],
            stores: vec![
                d(Store::Ollama, ".ollama/models"),
                d(Store::HuggingFace, ".cache/huggingface/hub"),
                d(Store::LmStudio, ".lmstudio/models"),
                d(Store::LmStudio, ".cache/lm-studio/models"),
                d(Store::LlamaCpp, "not-a-dir"),
            ],
        }
    }

    /// The real binary with HOME here, no config (or `config`), and no
    /// other tool's variable from the machine.
    fn run(&self, config: Option<&str>, args: &[&str]) -> (String, String, bool) {
        let h = self.path();
        let config_file = h.join("config.toml");
        match config {
            Some(c) => fs::write(&config_file, c).unwrap(),
            None => {
                let _ = fs::remove_file(&config_file);
            }
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"));
        for v in [
            "OLLAMA_MODELS",
            "HF_HUB_CACHE",
            "HF_HOME",
            "XDG_CACHE_HOME",
            "TOKENSCOPE_MODELS_DIR",
            "TOKENSCOPE_MODEL",
            "TOKENSCOPE_SOURCES",
        ] {
            cmd.env_remove(v);
        }
        let out = cmd
            .args(args)
            .env("HOME", h)
            .env("TOKENSCOPE_HOME", h.join("ts"))
            .env("TOKENSCOPE_CONFIG", &config_file)
            .env("LLAMA_CACHE", h.join("not-a-dir"))
            .output()
            .expect("binary runs");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.success(),
        )
    }
}

fn cards(found: &[Result<ModelCard, CatalogError>]) -> Vec<(&str, &str, &str, u32)> {
    found
        .iter()
        .flatten()
        .map(|c| {
            (
                c.source.map_or("tokenscope", Store::label),
                c.id.as_str(),
                c.name.as_str(),
                c.parts,
            )
        })
        .collect()
}

#[test]
fn every_store_is_listed_under_its_owners_names() {
    let home = Home::new();
    let mut before = Vec::new();
    walk(home.path(), &mut before);
    let found = home.places().discover();
    assert_eq!(
        cards(&found),
        [
            // A blob's name is a digest: the header's lower-case base name stays so.
            (
                "ollama",
                "hf.co/bartowski/smollm2-gguf:Q4_1",
                "Smollm2 135M",
                1
            ),
            ("ollama", "smollm2:135m", "Smollm2 135M", 1),
            (
                "ollama",
                "someone/qwen-coder:latest",
                "Qwen2.5 Coder 0.5B Instruct",
                1
            ),
            (
                "huggingface",
                "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                "Qwen2.5 Coder 0.5B Instruct",
                1
            ),
            (
                "huggingface",
                "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/old/qwen-old.gguf",
                "Qwen2.5 Coder 0.5B Instruct",
                1
            ),
            (
                "lmstudio",
                "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1-00001-of-00002.gguf",
                "SmolLM2 135M Instruct",
                2
            ),
            (
                "lmstudio",
                "lmstudio-community/gemma-3-270m-it-GGUF/gemma-3-270m-q4_k_m.gguf",
                "Gemma 3 270M",
                1
            ),
        ]
    );
    let ollama_smol = found
        .iter()
        .flatten()
        .find(|c| c.id == "smollm2:135m")
        .unwrap();
    assert_eq!(
        fs::canonicalize(&ollama_smol.path).unwrap(),
        fs::canonicalize(common::model(common::SMOL)).unwrap()
    );
    // The split model: opened through its first part, both parts counted.
    let split = found.iter().flatten().find(|c| c.parts == 2).unwrap();
    assert_eq!(
        split.file_size,
        fs::metadata(common::model(common::SMOL)).unwrap().len() + "the second part".len() as u64
    );
    // The problems: the missing blob, the store that is a file.
    let errors: Vec<String> = found
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| format!("{} | {e}", e.row_name()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("ghost:1b | ollama model ghost:1b: its weights")
            && errors[0].contains("sha256-dead")
            && errors[0].contains("are missing")
            && errors[0].contains("ollama pull ghost:1b"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("llama.cpp | cannot read the llama.cpp models at")
            && errors[1].contains("not-a-dir")
            && errors[1].contains("sources"),
        "{}",
        errors[1]
    );
    // Nothing was written, renamed or removed in the stores (read only).
    let mut after = Vec::new();
    walk(home.path(), &mut after);
    assert_eq!(before, after);
}

/// Every file and link below `dir` (not following links), sorted, with its
/// modification time.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::time::SystemTime)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            walk(&p, out);
        } else {
            out.push((
                p,
                fs::symlink_metadata(e.path()).unwrap().modified().unwrap(),
            ));
        }
    }
}

#[test]
fn the_picker_shows_each_source_with_variants_together() {
    let home = Home::new();
    let entries = tokenscope::tui::models::discover(&home.places());
    let rows: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.source.as_str(), e.file_name.as_str()))
        .collect();
    // The three copies of Qwen are one model (same architecture, parameters,
    // vocabulary): listed together where the first was, as are SmolLM2's.
    let at = |source: &str, needle: &str| {
        rows.iter()
            .position(|(s, f)| *s == source && f.contains(needle))
            .unwrap_or_else(|| panic!("no {source} {needle}: {rows:?}"))
    };
    let qwen = [
        at("ollama", "sha256-9f1d"),
        at("huggingface", "qwen2.5-coder"),
        at("huggingface", "qwen-old"),
    ];
    assert_eq!(qwen[1], qwen[0] + 1, "{rows:?}");
    assert_eq!(qwen[2], qwen[0] + 2, "{rows:?}");
    let ghost = entries.iter().find(|e| e.file_name == "ghost:1b").unwrap();
    assert!(
        ghost.error.as_deref().unwrap().contains("are missing"),
        "{ghost:?}"
    );
    let store = entries.iter().find(|e| e.file_name == "llama.cpp").unwrap();
    assert!(
        !store.error.as_deref().unwrap().contains('\n'),
        "one line in the picker"
    );
    assert!(
        entries
            .iter()
            .filter(|e| e.error.is_none())
            .all(|e| !e.source.is_empty())
    );
}

#[test]
fn names_their_owners_use_resolve() {
    let home = Home::new();
    let places = home.places();
    let id = |q: &str| places.resolve(q).map(|c| c.id).map_err(|e| e.to_string());
    assert_eq!(id("smollm2:135m").unwrap(), "smollm2:135m");
    assert_eq!(id("SMOLLM2:135M").unwrap(), "smollm2:135m");
    // No tag: latest, as `ollama run` takes it.
    assert_eq!(
        id("someone/qwen-coder").unwrap(),
        "someone/qwen-coder:latest"
    );
    assert_eq!(
        id("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
            .unwrap(),
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    );
    assert_eq!(
        id("gemma-3-270m-it").unwrap(),
        "lmstudio-community/gemma-3-270m-it-GGUF/gemma-3-270m-q4_k_m.gguf"
    );
    let e = id("ghost:1b").unwrap_err();
    assert!(e.contains("are missing"), "{e}");
    let e = id("qwen").unwrap_err();
    assert!(
        e.contains("matches several") && e.contains("someone/qwen-coder:latest (ollama)"),
        "{e}"
    );
    let e = id("nothing-like-it").unwrap_err();
    assert!(
        e.contains("smollm2:135m") && e.contains(".ollama/models (ollama)"),
        "{e}"
    );
}

#[test]
fn the_models_command_shows_each_source_and_loads_by_name_and_tag() {
    let home = Home::new();
    let (out, err, ok) = home.run(None, &["models"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("SOURCE") && lines[0].ends_with("MODEL"),
        "{out}"
    );
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{out}"))
            .to_string()
    };
    let smol = row(" smollm2:135m");
    assert!(
        smol.starts_with("Smollm2 135M ") && smol.contains(" ollama ") && smol.contains("Q4_1"),
        "{smol}"
    );
    assert!(
        row("gemma-3-270m-q4_k_m.gguf").contains(" lmstudio "),
        "{out}"
    );
    assert!(!out.contains("mmproj"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ghost:1b") && l.contains("error: ollama model ghost:1b")),
        "{out}"
    );
    // `info` and a real generation through Ollama's name.
    let (info, err, ok) = home.run(None, &["info", "--model", "smollm2:135m"]);
    assert!(ok, "{err}");
    assert!(
        info.contains("name:            Smollm2 135M")
            && info.contains("source:          smollm2:135m (ollama, read only)"),
        "{info}"
    );
    let (run, err, ok) = home.run(
        None,
        &[
            "run",
            "--model",
            "smollm2:135m",
            "--temp",
            "0",
            "--max-tokens",
            "2",
            "-p",
            "Hello",
        ],
    );
    assert!(ok, "{err}");
    assert!(run.contains("Smollm2 135M"), "{run}");
    // The split model: one card, through its first part.
    let (info, err, ok) = home.run(None, &["info", "--model", "Instruct-Q4_1-00001"]);
    assert!(ok, "{err}");
    assert!(
        info.contains("SmolLM2-135M-Instruct-Q4_1-00001-of-00002.gguf (part 1 of 2)")
            && info.contains("(lmstudio, read only)"),
        "{info}"
    );
    // The config key turns the other stores off.
    let (out, err, ok) = home.run(Some("sources = []\n"), &["models"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("No models in "), "{out}");
    let (out, err, ok) = home.run(Some("sources = [\"lmstudio\"]\n"), &["models"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().count(),
        3,
        "header, gemma, the split SmolLM2:\n{out}"
    );
}
