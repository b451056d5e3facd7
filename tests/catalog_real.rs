//! Header checks against the real demo models (see `tests/common` for where
//! they are looked for; `make models` fetches them).

mod common;

use tokenscope::catalog::{self, ModelCard};

fn card(file: &str) -> ModelCard {
    catalog::read_card(&common::model(file)).expect("demo model header reads")
}

#[test]
fn smollm2_card() {
    let c = card("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(c.arch, "llama");
    assert_eq!(c.quant, "Q4_1");
    assert_eq!(c.n_vocab, 49152);
    assert!(c.has_chat_template());
    assert!(c.chat_template.as_deref().unwrap().contains("<|im_start|>"));
    assert_eq!(c.file_size, 98_362_432);
    assert!(
        (130_000_000..140_000_000).contains(&c.n_params),
        "{}",
        c.n_params
    );
    assert_eq!(c.params_human(), "135M");
    assert_eq!(c.name, "SmolLM2 135M Instruct");
    assert_eq!(c.former_name, "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(c.n_layer, 30);
    assert!(c.n_ctx_train >= 2048, "{}", c.n_ctx_train);
}

#[test]
fn gemma3_card() {
    let c = card("gemma-3-270m-q4_k_m.gguf");
    assert_eq!(c.arch, "gemma3");
    assert_eq!(c.quant, "Q4_K_M");
    assert_eq!(c.n_vocab, 262_144);
    assert!(!c.has_chat_template());
    assert_eq!(c.file_size, 253_113_024);
    assert!(
        (260_000_000..280_000_000).contains(&c.n_params),
        "{}",
        c.n_params
    );
    assert_eq!(c.params_human(), "268M");
    assert_eq!(c.name, "Gemma 3 270M");
    assert_eq!(c.former_name, "Gemma 3 270m");
    assert_eq!(c.n_layer, 18);
    let tokens = c
        .metadata
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .unwrap();
    assert_eq!(tokens.1, "[str; 262144]");
}

#[test]
fn discover_and_resolve_demo_models() {
    common::model(common::SMOL);
    common::model(common::GEMMA);
    let dirs = vec![common::models_dir()];
    assert_eq!(catalog::resolve("smol", &dirs).unwrap().arch, "llama");
    assert_eq!(catalog::resolve("GEMMA", &dirs).unwrap().arch, "gemma3");
    let table = tokenscope::commands::listing::models_table(&catalog::discover(&dirs));
    assert!(
        table.contains("gemma3") && table.contains("Q4_K_M"),
        "{table}"
    );
}

#[test]
fn truncated_copy_of_a_real_model_is_reported() {
    let src = common::model(common::SMOL);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("cut.gguf");
    let mut f = std::fs::File::open(&src).unwrap();
    let mut out = std::fs::File::create(&dst).unwrap();
    std::io::copy(&mut std::io::Read::take(&mut f, 50_000_000), &mut out).unwrap();
    let msg = catalog::read_card(&dst).unwrap_err().to_string();
    assert!(
        msg.contains("50000000 bytes") && msg.contains("98362432") && msg.contains("re-download"),
        "{msg}"
    );
}
