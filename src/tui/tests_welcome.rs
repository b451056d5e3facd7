//! The welcome screen: the Chinese demo model is suggested by the name the
//! picker shows it under.

use super::tests::H;

#[test]
fn the_welcome_screen_names_the_demo_model_that_knows_chinese() {
    let h = H::new(80, 24);
    let screen = h.screen();
    assert!(
        screen.contains("中文? Ctrl-O, type qwen: Qwen2.5 Coder 0.5B Instruct knows Chinese."),
        "{screen}"
    );
}
