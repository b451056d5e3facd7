//! Chat templates: the GGUF's Jinja `tokenizer.chat_template` rendered with
//! minijinja the way Hugging Face transformers' `apply_chat_template` renders it
//! (`_compile_jinja_template` in `transformers/utils/chat_template_utils.py`):
//! `trim_blocks` and `lstrip_blocks`, loop controls, the `{% generation %}` tag
//! (its body rendered as is), the globals `raise_exception` and `strftime_now`,
//! a `tojson` filter with Python's `json.dumps` output (`ensure_ascii=False`,
//! `indent`, `separators`, `sort_keys`, no HTML escaping), and the variables
//! `messages`, `tools`, `documents`, `add_generation_prompt`, `bos_token`,
//! `eos_token`. Message contents are kept apart from the template's own text so
//! that user text is never parsed into control tokens.
//!
//! Its size is earned: this is the template compatibility layer, one place
//! for every Python/Jinja behaviour real GGUF templates rely on (the filters,
//! globals and whitespace rules above, the fallbacks when one does not
//! render); split, each part would be read only beside the others.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, context};
use thiserror::Error;

use super::api::{ChatMessage, Role};
use crate::text::{escape_inline, truncate};

/// A piece of the prompt: template text (may hold control tokens such as
/// `<|im_start|>`) or message content (tokenized as plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptPiece {
    /// The text of this piece.
    pub text: String,
    /// True for template text (control tokens are parsed), false for contents.
    pub special: bool,
}

/// Why a chat template could not be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// The template is not valid Jinja (as minijinja reads it).
    Syntax(String),
    /// The template called `raise_exception(message)`.
    Raised {
        /// The template's own message, as it wrote it.
        message: String,
    },
    /// Any other failure while rendering (an undefined method, a bad filter, …).
    Render(String),
}
impl std::fmt::Display for TemplateError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            TemplateError::Syntax(v) => crate::i18n::tr_args(
                "template-syntax",
                "the chat template does not parse: { $v }",
                &[("v", &v)],
            ),
            TemplateError::Raised { message } => crate::i18n::tr_args(
                "template-raised",
                "the chat template raised an error: { $message }",
                &[("message", &message)],
            ),
            TemplateError::Render(v) => crate::i18n::tr_args(
                "template-render",
                "the chat template failed to render: { $v }",
                &[("v", &v)],
            ),
        };
        f.write_str(&text)
    }
}

impl TemplateError {
    /// One short line for the user in the interface language, the
    /// template's text escaped: "the chat template raised an error ("System
    /// role not supported")".
    pub fn summary(&self) -> String {
        use crate::i18n::tr_args;
        let (TemplateError::Syntax(d)
        | TemplateError::Raised { message: d }
        | TemplateError::Render(d)) = self;
        let first = d.lines().next().unwrap_or_default();
        let detail = format!("\"{}\"", truncate(&escape_inline(first), 160));
        let args: &[(&str, &dyn std::fmt::Display)] = &[("detail", &detail)];
        match self {
            TemplateError::Syntax(_) => tr_args(
                "template-summary-syntax",
                "the chat template does not parse ({ $detail })",
                args,
            ),
            TemplateError::Raised { .. } => tr_args(
                "template-summary-raised",
                "the chat template raised an error ({ $detail })",
                args,
            ),
            TemplateError::Render(_) => tr_args(
                "template-summary-render",
                "the chat template failed to render ({ $detail })",
                args,
            ),
        }
    }
}

/// The error `raise_exception` attaches, so that a template's own refusal is
/// told apart from other rendering failures.
#[derive(Debug, Error)]
#[error("{0}")]
struct Raised(String);

// Private-use characters: they do not occur in real text and survive every
// string filter templates apply (trim, indexing aside).
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

fn sentinel(i: usize) -> String {
    format!("{OPEN}{i}{CLOSE}")
}

/// Special tokens the template may refer to.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateTokens {
    /// `bos_token`: the text of the beginning-of-sequence token.
    pub bos: String,
    /// `eos_token`: the text of the end-of-sequence token.
    pub eos: String,
}

/// How message contents enter the rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contents {
    /// As they are: the template's own filters (`| trim`, …) apply and the whole
    /// prompt is one piece. Only for contents that hold no control-token text.
    Literal,
    /// Sentinels, replaced afterwards by pieces tokenized as plain text, so that
    /// typed control-token text stays text.
    Guarded,
}

/// A prompt rendered with the model's own template, and what the user should
/// know about how it was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// The prompt.
    pub pieces: Vec<PromptPiece>,
    /// Set when the conversation had to be changed for the template to accept
    /// it (a system prompt folded into the first message).
    pub note: Option<String>,
}

/// A chat template parsed once (per model), rendered per request.
#[derive(Debug)]
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    /// Parses `source` in an environment set up as transformers sets up its own.
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::Syntax(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg.clone()).with_source(Raised(msg)))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            strftime_now(&fmt)
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", desugar_generation(source))
            .map_err(|e| TemplateError::Syntax(format!("{e:#}")))?;
        Ok(Self { env })
    }

    /// Renders `messages` with the generation prompt appended.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tokens: &TemplateTokens,
        contents: Contents,
    ) -> Result<Vec<PromptPiece>, TemplateError> {
        let rendered = self.render_text(messages, tokens, contents)?;
        match contents {
            Contents::Literal => Ok(vec![PromptPiece {
                text: rendered,
                special: true,
            }]),
            Contents::Guarded => split_sentinels(&rendered, messages),
        }
    }

    /// The template's text for `messages`: with their contents, or with
    /// sentinels in their place ([`Contents::Guarded`], see [`split_sentinels`]).
    pub(crate) fn render_text(
        &self,
        messages: &[ChatMessage],
        tokens: &TemplateTokens,
        contents: Contents,
    ) -> Result<String, TemplateError> {
        let msgs: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = match contents {
                    Contents::Literal => m.content.clone(),
                    Contents::Guarded => sentinel(i),
                };
                context! { role => m.role.as_str(), content => content }
            })
            .collect();
        let rendered = self
            .env
            .get_template("chat")
            .and_then(|t| {
                t.render(context! {
                    messages => msgs,
                    tools => (),
                    documents => (),
                    add_generation_prompt => true,
                    bos_token => &tokens.bos,
                    eos_token => &tokens.eos,
                })
            })
            .map_err(render_error)?;
        Ok(rendered)
    }

    /// Renders `messages`; when the template raises on a conversation that
    /// starts with a system prompt (Gemma's "System role not supported"),
    /// renders it again with the system prompt put at the start of the first
    /// user message, and says so in [`Rendered::note`]. Errors are those of the
    /// conversation as given.
    pub(crate) fn render_or_fold(
        &self,
        messages: &[ChatMessage],
        tokens: &TemplateTokens,
        contents: Contents,
    ) -> Result<Rendered, TemplateError> {
        let err = match self.render(messages, tokens, contents) {
            Ok(pieces) => return Ok(Rendered { pieces, note: None }),
            Err(e) => e,
        };
        if let TemplateError::Raised { message } = &err
            && let Some(folded) = fold_system_prompt(messages)
            && let Ok(pieces) = self.render(&folded, tokens, contents)
        {
            let message = truncate(&escape_inline(message), 160);
            return Ok(Rendered {
                pieces,
                note: Some(crate::i18n::tr_args(
                    "template-refuses-system",
                    "the chat template refuses a system prompt ({ $message }): it was put at the start of your first message instead",
                    &[("message", &format!("\"{message}\""))],
                )),
            });
        }
        Err(err)
    }

    /// The system prompt this template writes when the conversation has none
    /// (Qwen2.5's "You are Qwen, created by Alibaba Cloud…", SmolLM2's "You
    /// are a helpful AI assistant named SmolLM…"): the text it puts where a
    /// system prompt's content would go. Found by rendering one user message
    /// with and without a system prompt. `None` when it writes none, or when
    /// either rendering fails.
    pub(crate) fn default_system_prompt(&self, tokens: &TemplateTokens) -> Option<String> {
        let user = ChatMessage::new(Role::User, "u");
        let with = [ChatMessage::new(Role::System, "s"), user.clone()];
        let with = self.render_text(&with, tokens, Contents::Guarded).ok()?;
        let without = self.render_text(&[user], tokens, Contents::Guarded).ok()?;
        // With one: `before` system `between` user …; without: what is left
        // of `before … between` is the template's own system prompt.
        let (s0, s1) = (sentinel(0), sentinel(1));
        let (before, rest) = with.split_once(&s0)?;
        let (between, _) = rest.split_once(&s1)?;
        let (head, _) = without.split_once(&s0)?;
        let own = head.strip_prefix(before)?.strip_suffix(between)?.trim();
        (!own.is_empty()).then(|| own.to_string())
    }
}

/// The conversation with its leading system prompt(s) put at the start of the
/// first user message (separated by a blank line, as Gemma's template and
/// llama.cpp's built-in fallback do); `None` when there is nothing to fold.
pub(crate) fn fold_system_prompt(messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
    let n_system = messages
        .iter()
        .take_while(|m| m.role == Role::System)
        .count();
    let first_user = messages.get(n_system)?;
    if n_system == 0 || first_user.role != Role::User {
        return None;
    }
    let mut content: String = messages[..n_system]
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    content.push_str("\n\n");
    content.push_str(&first_user.content);
    let mut folded = vec![ChatMessage::new(Role::User, content)];
    folded.extend_from_slice(&messages[n_system + 1..]);
    Some(folded)
}

/// A minijinja error as a [`TemplateError`]: `raise_exception` calls become
/// [`TemplateError::Raised`] with the template's message.
fn render_error(e: Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(Raised(message)) = s.downcast_ref::<Raised>() {
            return TemplateError::Raised {
                message: message.clone(),
            };
        }
        source = s.source();
    }
    TemplateError::Render(format!("{e:#}"))
}

/// Replaces transformers' `{% generation %}…{% endgeneration %}` tags (its
/// `AssistantTracker` extension, which renders the body as is) by
/// `{% with %}…{% endwith %}`: the same output, the same scoping of the body
/// (a call block in Jinja2), and the same whitespace handling (`-`/`+`
/// modifiers are kept). Tags inside comments, strings and `raw` blocks are left alone.
pub(crate) fn desugar_generation(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let close = match rest.as_bytes().get(1) {
            Some(b'#') => "#}",
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                out.push('{');
                rest = &rest[1..];
                continue;
            }
        };
        let Some(len) = tag_len(rest, close) else {
            // Unterminated: leave it to the parser to report.
            out.push_str(rest);
            return out;
        };
        let tag = &rest[..len];
        rest = &rest[len..];
        if close != "%}" {
            out.push_str(tag);
            continue;
        }
        let inner = &tag[2..tag.len() - 2];
        // Whitespace modifiers, taken one after the other: `{%-%}` has one
        // character for both, and is left to the parser to report.
        let lead = inner.strip_prefix(['-', '+']).map_or("", |_| &inner[..1]);
        let body = &inner[lead.len()..];
        let trail = body
            .strip_suffix(['-', '+'])
            .map_or("", |_| &body[body.len() - 1..]);
        let word = body[..body.len() - trail.len()].trim();
        match word {
            "generation" => {
                let _ = write!(out, "{{%{lead} with {trail}%}}");
            }
            "endgeneration" => {
                let _ = write!(out, "{{%{lead} endwith {trail}%}}");
            }
            "raw" => {
                out.push_str(tag);
                // Copy up to and including the matching endraw tag.
                let end = find_endraw(rest).unwrap_or(rest.len());
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            _ => out.push_str(tag),
        }
    }
    out.push_str(rest);
    out
}

/// Length of the tag at the start of `s` (which opens with `{{`, `{%` or `{#`)
/// up to and including `close`, skipping string literals inside expressions.
fn tag_len(s: &str, close: &str) -> Option<usize> {
    if close == "#}" {
        return s[2..].find(close).map(|i| i + 2 + close.len());
    }
    let bytes = s.as_bytes();
    let mut i = 2;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if s[i..].starts_with(close) => return Some(i + close.len()),
            None => {}
        }
        i += 1;
    }
    None
}

/// End of the `{% endraw %}` tag in `s`, if any.
fn find_endraw(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("{%") {
        let at = from + i;
        let len = tag_len(&s[at..], "%}")?;
        let inner = s[at + 2..at + len - 2].trim_matches(|c: char| c == '-' || c == '+');
        if inner.trim() == "endraw" {
            return Some(at + len);
        }
        from = at + 2;
    }
    None
}

/// Options of transformers' `tojson` filter (those of Python's `json.dumps`).
struct JsonStyle {
    ensure_ascii: bool,
    /// `None`: one line; `Some(unit)`: one item per line, indented by `unit` per level.
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, arguments by position or by name, the
/// result not HTML-escaped (unlike Jinja's and minijinja's own `tojson`).
fn tojson(value: &Value, args: &[Value], kwargs: Kwargs) -> Result<Value, Error> {
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > NAMES.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let arg = |i: usize| -> Result<Value, Error> {
        match kwargs.get::<Option<Value>>(NAMES[i])? {
            Some(v) => Ok(v),
            None => Ok(args.get(i).cloned().unwrap_or(Value::from(()))),
        }
    };
    let ensure_ascii = arg(0)?.is_true();
    let sort_keys = arg(3)?.is_true();
    let indent = arg(1)?;
    let indent = match indent.kind() {
        ValueKind::None | ValueKind::Undefined => None,
        ValueKind::String => Some(indent.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => {
            let n = indent.as_i64().unwrap_or(0).clamp(0, 1024) as usize;
            Some(" ".repeat(n))
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: indent must be a number or a string, not {other}"),
            ));
        }
    };
    let separators = arg(2)?;
    let (item_sep, key_sep) = match separators.kind() {
        ValueKind::None | ValueKind::Undefined if indent.is_some() => (",".into(), ": ".into()),
        ValueKind::None | ValueKind::Undefined => (", ".into(), ": ".into()),
        _ => {
            let parts: Vec<Value> = separators.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                    a.as_str().unwrap_or_default().to_string(),
                    b.as_str().unwrap_or_default().to_string(),
                ),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be a pair of strings",
                    ));
                }
            }
        }
    };
    kwargs.assert_all_used()?;
    let style = JsonStyle {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(Value::from_safe_string(out))
}

/// `value` as Python's `json.dumps` writes it with `style`.
fn write_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    level: usize,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => {
            let _ = write!(out, "{value}");
        }
        ValueKind::Number => {
            let f = f64::try_from(value.clone())?;
            out.push_str(&py_float_repr(f));
        }
        ValueKind::String => {
            json_string(out, value.as_str().unwrap_or_default(), style.ensure_ascii)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, style, level, '[', ']', &items, |out, item, level| {
                write_json(out, item, style, level)
            })?;
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((key, item));
            }
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(
                out,
                style,
                level,
                '{',
                '}',
                &entries,
                |out, (key, item), level| {
                    json_key(out, key, style.ensure_ascii)?;
                    out.push_str(&style.key_sep);
                    write_json(out, item, style, level)
                },
            )?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("Object of type {other} is not JSON serializable"),
            ));
        }
    }
    Ok(())
}

/// Writes `[…]` or `{…}` around `items` as `json.dumps` lays them out.
fn write_container<T>(
    out: &mut String,
    style: &JsonStyle,
    level: usize,
    open: char,
    close: char,
    items: &[T],
    mut item: impl FnMut(&mut String, &T, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(unit) = &style.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(unit);
            }
        }
    };
    newline(out, level + 1);
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_sep);
            newline(out, level + 1);
        }
        item(out, it, level + 1)?;
    }
    newline(out, level);
    out.push(close);
    Ok(())
}

/// A dictionary key: strings as they are, numbers, booleans and none converted
/// as Python's `json` converts them.
fn json_key(out: &mut String, key: &Value, ensure_ascii: bool) -> Result<(), Error> {
    match key.kind() {
        ValueKind::String => json_string(out, key.as_str().unwrap_or_default(), ensure_ascii),
        ValueKind::None => out.push_str("\"null\""),
        ValueKind::Bool => out.push_str(if key.is_true() {
            "\"true\""
        } else {
            "\"false\""
        }),
        ValueKind::Number if key.is_integer() => {
            let _ = write!(out, "\"{key}\"");
        }
        ValueKind::Number => {
            let f = f64::try_from(key.clone())?;
            let _ = write!(out, "\"{}\"", py_float_repr(f));
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("keys must be str, int, float, bool or None, not {other}"),
            ));
        }
    }
    Ok(())
}

/// A JSON string as Python writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`,
/// other controls as `\u001b`; with `ensure_ascii`, everything outside
/// printable ASCII as `\u00e9` (surrogate pairs above U+FFFF).
fn json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`, as `json.dumps` writes floats: the shortest digits
/// that read back the same, in positional notation for exponents from -5 to
/// 15 (`0.0001`, `1e-05`, `1e+16`), `.0` on whole numbers; `NaN`, `Infinity`
/// and `-Infinity` (`json.dumps` allows them by default).
pub(crate) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        let s = if f > 0.0 { "Infinity" } else { "-Infinity" };
        return s.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-5", "-1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-5 < exp && exp < 16) {
        let (first, more) = digits.split_at(1);
        let dot = if more.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{more}e{exp_sign}{:02}", exp.abs());
    }
    let point = exp + 1;
    let n = digits.len() as i32;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if n <= point {
        format!("{sign}{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Parses and renders `template` in one go.
#[cfg(test)]
pub(crate) fn render(
    template: &str,
    messages: &[ChatMessage],
    tokens: &TemplateTokens,
    contents: Contents,
) -> Result<Vec<PromptPiece>, TemplateError> {
    ChatTemplate::new(template)?.render(messages, tokens, contents)
}

/// transformers' `strftime_now`: `datetime.now().strftime(fmt)`, that is the
/// local time formatted by the C library's `strftime` (as CPython does; Llama 3
/// templates print today's date with it).
fn strftime_now(fmt: &str) -> String {
    // SAFETY: time(NULL) only reads the clock.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    strftime_local(fmt, now)
}

/// `fmt` for the local time at `t` (seconds since the epoch) through the C
/// library's `strftime`; the UTC subset of [`strftime_utc`] where that fails.
fn strftime_local(fmt: &str, t: libc::time_t) -> String {
    let fallback = || {
        let secs = u64::try_from(t).unwrap_or(0);
        strftime_utc(
            fmt,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
    };
    // Python refuses a format with a NUL in it; the fallback keeps the text.
    let Ok(c_fmt) = std::ffi::CString::new(fmt) else {
        return fallback();
    };
    // SAFETY: `tm` is plain data that localtime_r fills in; strftime writes at
    // most `buf.len()` bytes into `buf` and reads the NUL-terminated format.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return fallback();
        }
        let mut buf = vec![0u8; 64 + 4 * fmt.len()];
        loop {
            let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c_fmt.as_ptr(), &tm);
            // 0 is an empty result or a buffer too small: grow a few times.
            if n > 0 || buf.len() >= 1 << 16 {
                buf.truncate(n);
                return String::from_utf8_lossy(&buf).into_owned();
            }
            buf.resize(buf.len() * 4, 0);
        }
    }
}

/// The subset of `strftime` chat templates use, in UTC: the fallback of
/// [`strftime_local`].
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
    let (year, month, day) = crate::civil::civil_from_days(secs.div_euclid(86_400));
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
pub(crate) fn split_sentinels(
    rendered: &str,
    messages: &[ChatMessage],
) -> Result<Vec<PromptPiece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let end = after
            .find(CLOSE)
            .ok_or_else(|| TemplateError::Render("the template cut a message apart".into()))?;
        let index: usize = after[..end]
            .parse()
            .map_err(|_| TemplateError::Render("the template altered a message".into()))?;
        let content = &messages
            .get(index)
            .ok_or_else(|| TemplateError::Render("unknown message index".into()))?
            .content;
        push(&mut pieces, &rest[..start], true);
        push(&mut pieces, content, false);
        rest = &after[end + CLOSE.len_utf8()..];
    }
    push(&mut pieces, rest, true);
    Ok(pieces)
}

/// Where each message's content ends (byte offset) in the prompt text made
/// from `rendered`, a rendering with sentinels in place of the contents (see
/// [`split_sentinels`]): `None` for a message the template left out. `None`
/// as a whole when the rendering is not one [`split_sentinels`] accepts.
pub(crate) fn sentinel_content_ends(
    rendered: &str,
    messages: &[ChatMessage],
) -> Option<Vec<Option<usize>>> {
    let mut ends = vec![None; messages.len()];
    let (mut rest, mut at) = (rendered, 0);
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let end = after.find(CLOSE)?;
        let index: usize = after[..end].parse().ok()?;
        at += start + messages.get(index)?.content.len();
        ends[index] = Some(at);
        rest = &after[end + CLOSE.len_utf8()..];
    }
    Some(ends)
}

/// Where each message's content ends (byte offset) in [`plain`]'s text.
pub(crate) fn plain_content_ends(messages: &[ChatMessage]) -> Vec<Option<usize>> {
    let mut at = 0;
    plain_parts(messages)
        .map(|(sep, content)| {
            at += sep.len() + content.len();
            Some(at)
        })
        .collect()
}

/// [`plain`]'s text as (separator, content) per message.
fn plain_parts(messages: &[ChatMessage]) -> impl Iterator<Item = (&'static str, &str)> {
    let mut prev: Option<Role> = None;
    messages.iter().map(move |m| {
        let sep = match (prev, m.role) {
            (Some(Role::System), _) => "\n\n",
            (Some(Role::Assistant), Role::User) => "\n",
            _ => "",
        };
        prev = Some(m.role);
        (sep, m.content.as_str())
    })
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
pub(crate) fn plain(messages: &[ChatMessage]) -> Vec<PromptPiece> {
    let mut pieces = Vec::new();
    for (sep, content) in plain_parts(messages) {
        push(&mut pieces, sep, false);
        push(&mut pieces, content, false);
    }
    pieces
}

/// Sentinel stand-ins for the contents, for llama.cpp's built-in template
/// (it does not alter contents, so the same splitting applies).
pub(crate) fn sentinel_messages(messages: &[ChatMessage]) -> Vec<(String, String)> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.role.as_str().to_string(), sentinel(i)))
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

    #[test]
    fn the_system_prompt_a_template_adds_when_none_is_given_is_found() {
        let own = |t: &str| {
            ChatTemplate::new(t)
                .unwrap()
                .default_system_prompt(&tokens())
        };
        assert_eq!(
            own(CHATML).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        // Qwen2.5's (its system branch, shortened): a default written in the
        // template's else branch.
        let qwen = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if message.role != 'system' %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
        assert_eq!(
            own(qwen).as_deref(),
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        );
        // Gemma 3 folds a system prompt into the first turn and adds none;
        // Gemma 2 refuses one; ChatML without a default adds none.
        assert_eq!(own(GEMMA), None);
        assert_eq!(own(GEMMA2), None);
        let plain_chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assert_eq!(own(plain_chatml), None);
    }

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

    /// Gemma 2's instruct template (as published with gemma-2-2b-it): it
    /// refuses a system prompt.
    const GEMMA2: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

    fn text(template: &str, msgs: &[ChatMessage]) -> String {
        joined(&render(template, msgs, &tokens(), Contents::Literal).unwrap())
    }

    #[test]
    fn gemma2_template_as_transformers_renders_it() {
        // transformers: tokenizer.apply_chat_template([{"role": "user", "content":
        // " Hello "}, {"role": "assistant", "content": "Hi!"}, {"role": "user",
        // "content": "Bye"}], tokenize=False, add_generation_prompt=True);
        // `| trim` binds tighter than `+`, so only the content is trimmed.
        let msgs = vec![
            ChatMessage::new(Role::User, " Hello "),
            ChatMessage::new(Role::Assistant, "Hi!"),
            ChatMessage::new(Role::User, "Bye"),
        ];
        assert_eq!(
            text(GEMMA2, &msgs),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn raise_exception_is_reported_with_the_templates_own_message() {
        let msgs = vec![
            ChatMessage::new(Role::System, "be brief"),
            ChatMessage::new(Role::User, "hi"),
        ];
        let err = render(GEMMA2, &msgs, &tokens(), Contents::Guarded).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Raised {
                message: "System role not supported".into()
            }
        );
        assert_eq!(
            err.summary(),
            "the chat template raised an error (\"System role not supported\")"
        );
        // Other failures are not mistaken for a refusal.
        let err = render("{{ messages.nope() }}", &msgs, &tokens(), Contents::Guarded).unwrap_err();
        assert!(matches!(err, TemplateError::Render(_)), "{err:?}");
        assert!(matches!(
            ChatTemplate::new("{% for %}").unwrap_err(),
            TemplateError::Syntax(_)
        ));
        // A hostile message is escaped in the summary.
        let err = render(
            "{{ raise_exception('\x1b]0;owned\x07 \u{202e}x') }}",
            &msgs,
            &tokens(),
            Contents::Guarded,
        )
        .unwrap_err();
        let summary = err.summary();
        assert!(
            !summary.contains('\x1b') && !summary.contains('\u{202e}'),
            "{summary:?}"
        );
    }

    #[test]
    fn a_refused_system_prompt_is_folded_into_the_first_message() {
        let msgs = vec![
            ChatMessage::new(Role::System, "be brief"),
            ChatMessage::new(Role::User, "hi"),
            ChatMessage::new(Role::Assistant, "Hello."),
            ChatMessage::new(Role::User, "more"),
        ];
        for contents in [Contents::Literal, Contents::Guarded] {
            let r = ChatTemplate::new(GEMMA2)
                .unwrap()
                .render_or_fold(&msgs, &tokens(), contents)
                .unwrap();
            assert_eq!(
                joined(&r.pieces),
                "<bos><start_of_turn>user\nbe brief\n\nhi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nmore<end_of_turn>\n<start_of_turn>model\n"
            );
            assert_eq!(
                r.note.as_deref(),
                Some(
                    "the chat template refuses a system prompt (\"System role not supported\"): it was put at the start of your first message instead"
                )
            );
        }
        // A template that accepts the system prompt renders it untouched, no note.
        let r = ChatTemplate::new(CHATML)
            .unwrap()
            .render_or_fold(&msgs, &tokens(), Contents::Literal)
            .unwrap();
        assert!(r.note.is_none());
        assert!(joined(&r.pieces).starts_with("<|im_start|>system\nbe brief<|im_end|>\n"));
        // A refusal that folding does not cure is the original error.
        let bad = vec![
            ChatMessage::new(Role::System, "s"),
            ChatMessage::new(Role::Assistant, "a"),
        ];
        let err = ChatTemplate::new(GEMMA2)
            .unwrap()
            .render_or_fold(&bad, &tokens(), Contents::Literal)
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::Raised {
                message: "System role not supported".into()
            }
        );
    }

    #[test]
    fn generation_blocks_render_their_body_as_is() {
        // ChatML with transformers' assistant-mask block, tags inline.
        let inline = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let msgs = vec![
            ChatMessage::new(Role::System, "S"),
            ChatMessage::new(Role::User, "U"),
            ChatMessage::new(Role::Assistant, "A"),
            ChatMessage::new(Role::User, "V"),
        ];
        assert_eq!(
            text(inline, &msgs),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nV<|im_end|>\n<|im_start|>assistant\n"
        );
        // One tag per line: trim_blocks drops the newline after each block tag,
        // lstrip_blocks the indentation before it; the newline after an
        // expression stays (Jinja2's rules, which transformers uses).
        let lines = "{%- for message in messages %}
    {%- if message['role'] == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {% generation %}
        {{- message['content'] + '<|im_end|>' }}
        {% endgeneration %}
    {%- else %}
        {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' }}
    {%- endif %}
    {{- '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
";
        let msgs = vec![
            ChatMessage::new(Role::User, "U"),
            ChatMessage::new(Role::Assistant, "A"),
        ];
        assert_eq!(
            text(lines, &msgs),
            "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n\nA<|im_end|>\n\n<|im_start|>assistant\n"
        );
        // Whitespace modifiers on the tags are kept.
        let trimmed = "{% for m in messages %}[ {%- generation -%} \n {{ m.content }} \n {%- endgeneration -%} ]{% endfor %}";
        assert_eq!(text(trimmed, &msgs), "[U][A]");
        // Assignments inside the block stay inside it, as in Jinja2's call block.
        let scoped = "{% set x = 'out' %}{% generation %}{% set x = 'in' %}{{ x }}{% endgeneration %}{{ x }}";
        assert_eq!(text(scoped, &msgs), "inout");
    }

    #[test]
    fn generation_tags_in_comments_strings_and_raw_blocks_are_text() {
        let src =
            "{# {% generation %} #}{{ '{% generation %}' }}{% raw %}{% generation %}{% endraw %}";
        assert_eq!(desugar_generation(src), src);
        assert_eq!(
            text(src, &[ChatMessage::new(Role::User, "x")]),
            "{% generation %}{% generation %}"
        );
        assert_eq!(
            desugar_generation("a{%- generation %}b{% endgeneration -%}c{%+generation+%}"),
            "a{%- with %}b{% endwith -%}c{%+ with +%}"
        );
    }

    #[test]
    fn tags_of_modifiers_only_are_errors_not_panics() {
        for src in ["{%-%}", "{%+%}", "{%-+%}", "{%--%}", "{%%}", "{%- -%}"] {
            assert_eq!(desugar_generation(src), src, "{src}");
            assert!(ChatTemplate::new(src).is_err(), "{src} is a syntax error");
        }
    }

    #[test]
    fn loop_controls_work() {
        let t = "{% for m in messages %}{% if loop.index0 == 1 %}{% continue %}{% endif %}{% if loop.index0 == 2 %}{% break %}{% endif %}{{ m.content }}{% endfor %}";
        let msgs: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|c| ChatMessage::new(Role::User, *c))
            .collect();
        assert_eq!(text(t, &msgs), "a");
    }

    #[test]
    fn tojson_writes_what_pythons_json_dumps_writes() {
        let one = |t: &str| text(t, &[ChatMessage::new(Role::User, "x")]);
        let x = "{% set x = {'b': 1, 'a': [1.5, 'é\\n', none, true, 'say \"hi\"'], 'c': {}} %}";
        // json.dumps(x, ensure_ascii=False): insertion order, ", " and ": ".
        assert_eq!(
            one(&format!("{x}{{{{ x | tojson }}}}")),
            r#"{"b": 1, "a": [1.5, "é\n", null, true, "say \"hi\""], "c": {}}"#
        );
        // indent=2: "," and ": ", one item per line, empty containers stay "{}".
        assert_eq!(
            one(&format!("{x}{{{{ x | tojson(indent=2) }}}}")),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    \"é\\n\",\n    null,\n    true,\n    \"say \\\"hi\\\"\"\n  ],\n  \"c\": {}\n}"
        );
        assert_eq!(
            one(&format!(
                "{x}{{{{ x | tojson(ensure_ascii=true, sort_keys=true, separators=(',', ':')) }}}}"
            )),
            r#"{"a":[1.5,"\u00e9\n",null,true,"say \"hi\""],"b":1,"c":{}}"#
        );
        assert_eq!(
            one("{{ {'k': [1]} | tojson(indent='\t') }}"),
            "{\n\t\"k\": [\n\t\t1\n\t]\n}"
        );
        // No HTML escaping (Jinja's own tojson writes \u003c…), controls as \u00XX.
        assert_eq!(one("{{ \"<b>&'\x01\" | tojson }}"), r#""<b>&'\u0001""#);
        assert_eq!(one("{{ '😀' | tojson(true) }}"), r#""\ud83d\ude00""#);
        assert_eq!(
            one("{{ messages | tojson }}"),
            r#"[{"role": "user", "content": "x"}]"#
        );
        assert!(
            render("{{ nope | tojson }}", &[], &tokens(), Contents::Literal).is_err(),
            "Undefined is not JSON serializable"
        );
    }

    #[test]
    fn floats_as_python_writes_them() {
        for (f, want) in [
            (0.1, "0.1"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (2.5e20, "2.5e+20"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (-1.5e-7, "-1.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn strftime_now_formats_local_time_with_the_c_library() {
        // 2024-07-26 12:00 UTC: the same date in every time zone within ±12 h.
        let t: libc::time_t = 1_721_995_200;
        assert_eq!(
            strftime_local("%A %d %B %Y, day %j %%", t),
            "Friday 26 July 2024, day 208 %"
        );
        assert_eq!(strftime_local("", t), "");
        assert_eq!(strftime_local("a\0b", t), "a\0b", "a NUL falls back");
        let today = render(
            "{{ strftime_now('%Y') }}",
            &[ChatMessage::new(Role::User, "x")],
            &tokens(),
            Contents::Literal,
        )
        .unwrap();
        assert_eq!(joined(&today).len(), 4);
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
