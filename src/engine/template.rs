//! Chat templates: the GGUF's Jinja `tokenizer.chat_template` rendered with
//! minijinja. Message contents are kept apart from the template's own text so
//! that user text is never parsed into control tokens.

use minijinja::{Environment, Error, ErrorKind, context};
use thiserror::Error;

use super::{ChatMessage, Role};

/// A piece of the prompt: template text (may hold control tokens such as
/// `<|im_start|>`) or message content (tokenized as plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPiece {
    pub text: String,
    pub special: bool,
}

#[derive(Debug, Error)]
#[error("chat template failed to render: {0}")]
pub struct TemplateError(String);

// Private-use characters: they do not occur in real text and survive every
// string filter templates apply (trim, indexing aside).
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

fn sentinel(i: usize) -> String {
    format!("{OPEN}{i}{CLOSE}")
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Special tokens the template may refer to.
#[derive(Debug, Clone, Default)]
pub struct TemplateTokens {
    pub bos: String,
    pub eos: String,
}

/// How message contents enter the rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    /// As they are: the template's own filters (`| trim`, …) apply and the whole
    /// prompt is one piece. Only for contents that hold no control-token text.
    Literal,
    /// Sentinels, replaced afterwards by pieces tokenized as plain text, so that
    /// typed control-token text stays text.
    Guarded,
}

/// A chat template parsed once (per model), rendered per request.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // Hugging Face renders chat templates with trim_blocks and lstrip_blocks.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            strftime_utc(&fmt, std::time::SystemTime::now())
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| TemplateError(e.to_string()))?;
        Ok(Self { env })
    }

    /// Renders `messages` with the generation prompt appended.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tokens: &TemplateTokens,
        contents: Contents,
    ) -> Result<Vec<PromptPiece>, TemplateError> {
        let msgs: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = match contents {
                    Contents::Literal => m.content.clone(),
                    Contents::Guarded => sentinel(i),
                };
                context! { role => role_str(m.role), content => content }
            })
            .collect();
        let rendered = self
            .env
            .get_template("chat")
            .and_then(|t| {
                t.render(context! {
                    messages => msgs,
                    add_generation_prompt => true,
                    bos_token => &tokens.bos,
                    eos_token => &tokens.eos,
                })
            })
            .map_err(|e| TemplateError(format!("{e:#}")))?;
        match contents {
            Contents::Literal => Ok(vec![PromptPiece {
                text: rendered,
                special: true,
            }]),
            Contents::Guarded => split_sentinels(&rendered, messages),
        }
    }
}

/// Parses and renders `template` in one go.
pub fn render(
    template: &str,
    messages: &[ChatMessage],
    tokens: &TemplateTokens,
    contents: Contents,
) -> Result<Vec<PromptPiece>, TemplateError> {
    ChatTemplate::new(template)?.render(messages, tokens, contents)
}

/// The subset of `strftime` chat templates use (Llama 3 prints today's date).
fn strftime_utc(fmt: &str, now: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out += &format!("{day:02}"),
            Some('m') => out += &format!("{month:02}"),
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &format!("{:02}", year % 100),
            Some('B') => out += month_name,
            Some('b') => out += &month_name[..3],
            Some('H') => out += &format!("{:02}", secs.rem_euclid(86_400) / 3600),
            Some('M') => out += &format!("{:02}", secs.rem_euclid(3600) / 60),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Turns a rendering that holds sentinels in place of message contents into pieces.
pub fn split_sentinels(
    rendered: &str,
    messages: &[ChatMessage],
) -> Result<Vec<PromptPiece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let end = after
            .find(CLOSE)
            .ok_or_else(|| TemplateError("the template cut a message apart".into()))?;
        let index: usize = after[..end]
            .parse()
            .map_err(|_| TemplateError("the template altered a message".into()))?;
        let content = &messages
            .get(index)
            .ok_or_else(|| TemplateError("unknown message index".into()))?
            .content;
        push(&mut pieces, &rest[..start], true);
        push(&mut pieces, content, false);
        rest = &after[end + CLOSE.len_utf8()..];
    }
    push(&mut pieces, rest, true);
    Ok(pieces)
}

fn push(pieces: &mut Vec<PromptPiece>, text: &str, special: bool) {
    if !text.is_empty() {
        pieces.push(PromptPiece {
            text: text.to_string(),
            special,
        });
    }
}

/// Plain completion (base models, `--raw`): the text continues where it ends.
/// A user turn after a reply starts on a new line; a system prompt comes first.
pub fn plain(messages: &[ChatMessage]) -> Vec<PromptPiece> {
    let mut pieces = Vec::new();
    let mut prev: Option<Role> = None;
    for m in messages {
        let sep = match (prev, m.role) {
            (Some(Role::System), _) => "\n\n",
            (Some(Role::Assistant), Role::User) => "\n",
            _ => "",
        };
        push(&mut pieces, sep, false);
        push(&mut pieces, &m.content, false);
        prev = Some(m.role);
    }
    pieces
}

/// Sentinel stand-ins for the contents, for llama.cpp's built-in template
/// (it does not alter contents, so the same splitting applies).
pub fn sentinel_messages(messages: &[ChatMessage]) -> Vec<(String, String)> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| (role_str(m.role).to_string(), sentinel(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// Gemma 3's instruct template (as published with the instruct models).
    pub const GEMMA: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

    fn joined(pieces: &[PromptPiece]) -> String {
        pieces.iter().map(|p| p.text.as_str()).collect()
    }

    fn tokens() -> TemplateTokens {
        TemplateTokens {
            bos: "<bos>".into(),
            eos: "<eos>".into(),
        }
    }

    #[test]
    fn chatml_renders_turns_and_generation_prompt() {
        let msgs = vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Hi <|im_end|>"),
        ];
        let pieces = render(CHATML, &msgs, &tokens(), Contents::Guarded).unwrap();
        assert_eq!(
            joined(&pieces),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n<|im_start|>assistant\n"
        );
        // The user's "<|im_end|>" is content, not template: never a control token.
        let user = pieces.iter().find(|p| p.text.starts_with("Hi")).unwrap();
        assert!(!user.special);
        assert!(pieces[0].special && pieces[0].text == "<|im_start|>system\n");
    }

    #[test]
    fn chatml_adds_default_system_prompt_when_none() {
        let msgs = vec![ChatMessage::new(Role::User, "你好")];
        let text = joined(&render(CHATML, &msgs, &tokens(), Contents::Guarded).unwrap());
        assert!(
            text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
        );
        assert!(text.ends_with("<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn gemma_style_template_with_system_prefix_and_roles() {
        let msgs = vec![
            ChatMessage::new(Role::System, "Sys"),
            ChatMessage::new(Role::User, "Q1"),
            ChatMessage::new(Role::Assistant, "A1"),
            ChatMessage::new(Role::User, "Q2"),
        ];
        let text = joined(&render(GEMMA, &msgs, &tokens(), Contents::Guarded).unwrap());
        assert_eq!(
            text,
            "<bos><start_of_turn>user\nSys\n\nQ1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn template_errors_are_reported_not_panicked() {
        let msgs = vec![
            ChatMessage::new(Role::Assistant, "A"),
            ChatMessage::new(Role::Assistant, "B"),
        ];
        let err = render(GEMMA, &msgs, &tokens(), Contents::Guarded)
            .unwrap_err()
            .to_string();
        assert!(err.contains("alternate"), "{err}");
        assert!(render("{% for %}", &msgs, &tokens(), Contents::Guarded).is_err());
    }

    #[test]
    fn python_string_methods_work() {
        let t =
            "{% for m in messages %}{{ m['role'].upper() }}:{{ m['content'].strip() }}{% endfor %}";
        let msgs = vec![ChatMessage::new(Role::User, "x")];
        assert_eq!(
            joined(&render(t, &msgs, &tokens(), Contents::Guarded).unwrap()),
            "USER:x"
        );
    }

    #[test]
    fn literal_contents_go_through_the_templates_filters() {
        let msgs = vec![ChatMessage::new(Role::User, "  Q1  \n")];
        let guarded = joined(&render(GEMMA, &msgs, &tokens(), Contents::Guarded).unwrap());
        let literal = render(GEMMA, &msgs, &tokens(), Contents::Literal).unwrap();
        assert_eq!(literal.len(), 1);
        assert!(literal[0].special);
        assert_eq!(
            literal[0].text, "<bos><start_of_turn>user\nQ1<end_of_turn>\n<start_of_turn>model\n",
            "Gemma's `| trim` applies"
        );
        assert!(
            guarded.contains("  Q1  \n"),
            "guarded contents stay as typed"
        );
    }

    #[test]
    fn strftime_formats_a_known_date() {
        // 2024-07-26 13:25:00 UTC
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_722_000_300);
        assert_eq!(strftime_utc("%d %b %Y", t), "26 Jul 2024");
        assert_eq!(
            strftime_utc("%Y-%m-%d %H:%M %B %%x", t),
            "2024-07-26 13:25 July %x"
        );
    }

    #[test]
    fn plain_mode_continues_text_without_template() {
        let msgs = vec![
            ChatMessage::new(Role::User, "The capital of France is"),
            ChatMessage::new(Role::Assistant, " Paris."),
            ChatMessage::new(Role::User, "And of Italy?"),
        ];
        let pieces = plain(&msgs);
        assert!(pieces.iter().all(|p| !p.special));
        assert_eq!(
            joined(&pieces),
            "The capital of France is Paris.\nAnd of Italy?"
        );
    }
}
