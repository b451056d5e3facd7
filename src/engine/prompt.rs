//! The prompt of a request: the chat template rendered (or a fallback, with a
//! note saying why), tokenized, fitted to the context by dropping the oldest
//! turns, and every token attributed to the message it came from.

use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use super::api::{ChatMessage, ChatMode, EngineError, PromptToken, Role, TokenId};
use super::session::drop_oldest_turn;
use super::slot::{Slot, valid_token};
use super::template::{self, Contents, PromptPiece};

/// A prompt built for a request: how, the pieces, and what the user should be
/// told about it (a template that refused the conversation, a fallback).
pub(super) struct Prompt {
    pub mode: ChatMode,
    pub pieces: Vec<PromptPiece>,
    pub note: Option<String>,
}

/// A prompt that fits the context: its tokens with their messages.
pub(super) struct FittedPrompt {
    pub mode: ChatMode,
    pub note: Option<String>,
    pub tokens: Vec<PromptToken>,
    /// Messages left out (oldest turns) so that it fits.
    pub dropped: usize,
}

/// Fills in what a freshly loaded slot's model card says of its prompts: the
/// chat mode its template gives a simple conversation and, with the GGUF's
/// own template, that template's default system prompt.
pub(super) fn describe_chat(slot: &mut Slot) {
    let probe = [ChatMessage::new(Role::User, "hi")];
    slot.info.chat_mode = build_pieces(slot, &probe, false).mode;
    if slot.info.chat_mode == ChatMode::Template {
        slot.info.default_system = slot
            .template
            .as_ref()
            .and_then(|t| t.as_ref().ok())
            .and_then(|t| t.default_system_prompt(&slot.special));
    }
}

/// Builds and tokenizes the prompt for `messages`, dropping the oldest turns
/// until it leaves `reserve` tokens free in a context of `n_ctx`.
///
/// Errors: [`EngineError::PromptTooLong`] when even the last message alone
/// does not fit.
pub(super) fn fit(
    slot: &Slot,
    messages: &[ChatMessage],
    raw: bool,
    n_ctx: usize,
    reserve: usize,
) -> Result<FittedPrompt, EngineError> {
    let mut kept: Vec<usize> = (0..messages.len()).collect();
    let mut msgs = messages.to_vec();
    let mut dropped = 0;
    loop {
        let prompt = build_pieces(slot, &msgs, raw);
        let (tokens, bos_added) = tokenize(slot, &prompt.pieces);
        let starts = token_offsets(slot.model(), &tokens, bos_added, &prompt.pieces);
        let ends = exact_content_ends(slot, &msgs, &prompt);
        let ends = ends.unwrap_or_else(|| content_ends(&prompt_text(&prompt.pieces), &msgs));
        let (tokens, mut owners) = splice_own_ids(
            slot.model(),
            tokens,
            owners(&starts, &ends),
            &starts,
            &prompt_text(&prompt.pieces),
            &msgs,
            &ends,
        );
        let vocab = slot.model().vocab();
        close_turns(
            &mut owners,
            |t| vocab.is_eog(tokens[t]),
            |t| {
                let piece = vocab.token_to_piece(tokens[t], true, None);
                !piece.is_empty() && piece.iter().all(u8::is_ascii_whitespace)
            },
        );
        let fits = tokens.len() + reserve <= n_ctx;
        let removed = if fits {
            Vec::new()
        } else {
            drop_oldest_turn(&mut msgs)
        };
        if fits || (removed.is_empty() && tokens.len() < n_ctx) {
            let n_tokens = tokens.len();
            let tokens = tokens
                .iter()
                .zip(owners)
                .map(|(t, owner)| PromptToken {
                    id: t.0,
                    message: owner.map(|i| kept[i] as u32),
                    role: owner.map(|i| msgs[i].role),
                })
                .collect();
            let no_bos = (prompt.mode == ChatMode::Plain && !bos_added)
                .then(|| no_bos_note(slot, n_tokens))
                .flatten();
            let note = match (prompt.note, no_bos) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
            return Ok(FittedPrompt {
                mode: prompt.mode,
                note,
                tokens,
                dropped,
            });
        }
        if removed.is_empty() {
            return Err(EngineError::PromptTooLong {
                n_prompt: tokens.len(),
                n_ctx,
            });
        }
        for &i in &removed {
            kept.remove(i);
        }
        dropped += removed.len();
    }
}

/// The prompt for `messages`: the model's Jinja template (rendered again with
/// the system prompt folded into the first message when the template refuses
/// one), else llama.cpp's built-in one, else plain completion; every fallback
/// says why in [`Prompt::note`].
pub(super) fn build_pieces(slot: &Slot, messages: &[ChatMessage], raw: bool) -> Prompt {
    let plain = |note| Prompt {
        mode: ChatMode::Plain,
        pieces: template::plain(messages),
        note,
    };
    if raw {
        return plain(None);
    }
    let Some(tmpl) = slot.template.as_ref() else {
        return plain(None);
    };
    let contents = if messages
        .iter()
        .all(|m| is_plain_text(slot.model(), &m.content))
    {
        Contents::Literal
    } else {
        Contents::Guarded
    };
    let err = match tmpl {
        Ok(t) => match t.render_or_fold(messages, &slot.special, contents) {
            Ok(r) => {
                return Prompt {
                    mode: ChatMode::Template,
                    pieces: r.pieces,
                    note: r.note,
                };
            }
            Err(e) => e,
        },
        Err(e) => e.clone(),
    };
    tracing::warn!("jinja chat template failed, trying llama.cpp's: {err}");
    match builtin_template(slot.model(), messages) {
        Some(pieces) => Prompt {
            mode: ChatMode::Builtin,
            pieces,
            note: Some(crate::i18n::tr_args(
                "template-used-builtin",
                "{ $why }: llama.cpp's built-in template for this model was used instead",
                &[("why", &err.summary())],
            )),
        },
        None => plain(Some(crate::i18n::tr_args(
            "template-used-plain",
            "{ $why }: the conversation was given to the model as plain text",
            &[("why", &err.summary())],
        ))),
    }
}

/// True when `text` holds no control-token text (`<|im_end|>` typed by a user):
/// then the whole prompt can be tokenized in one go, exactly as the model saw
/// it in training; otherwise contents are tokenized apart, as plain text.
fn is_plain_text(model: &LlamaModel, text: &str) -> bool {
    let vocab = model.vocab();
    vocab.tokenize(text.as_bytes(), false, true) == vocab.tokenize(text.as_bytes(), false, false)
}

fn builtin_template(model: &LlamaModel, messages: &[ChatMessage]) -> Option<Vec<PromptPiece>> {
    template::split_sentinels(&builtin_text(model, messages)?, messages).ok()
}

/// llama.cpp's built-in template for `messages`, sentinels in place of contents.
fn builtin_text(model: &LlamaModel, messages: &[ChatMessage]) -> Option<String> {
    let tmpl = model.chat_template(None).ok()?;
    let chat: Vec<LlamaChatMessage> = template::sentinel_messages(messages)
        .into_iter()
        .map(|(role, content)| LlamaChatMessage::new(role, content))
        .collect::<Result<_, _>>()
        .ok()?;
    model.apply_chat_template(&tmpl, &chat, true).ok()
}

/// Where each message's content ends in the prompt's text, known exactly
/// from a rendering with sentinels in place of the contents (a content found
/// by searching the text may match the template's own words, e.g. "help" in
/// a default system prompt). `None` when that rendering does not give the
/// same text (a template that changes contents), or when the conversation
/// was changed for the template (a folded system prompt): then the contents
/// are searched for.
fn exact_content_ends(
    slot: &Slot,
    messages: &[ChatMessage],
    prompt: &Prompt,
) -> Option<Vec<Option<usize>>> {
    let sentinels = match prompt.mode {
        ChatMode::Plain => return Some(template::plain_content_ends(messages)),
        ChatMode::Template if prompt.note.is_none() => {
            let t = slot.template.as_ref()?.as_ref().ok()?;
            t.render_text(messages, &slot.special, Contents::Guarded)
                .ok()?
        }
        ChatMode::Builtin => builtin_text(slot.model(), messages)?,
        ChatMode::Template | ChatMode::Server => return None,
    };
    let text: String = prompt.pieces.iter().map(|p| p.text.as_str()).collect();
    let same: String = template::split_sentinels(&sentinels, messages)
        .ok()?
        .iter()
        .map(|p| p.text.as_str())
        .collect();
    if same != text {
        return None;
    }
    template::sentinel_content_ends(&sentinels, messages)
}

/// Plain-completion prompts at most this many tokens long, without a BOS,
/// get [`no_bos_note`]. Measured on Qwen2.5-Coder-0.5B (no BOS): one token
/// ("中华人民") gives 12.8 bits of entropy, near random over its 152k
/// tokens; two ("中华人民共和") already 3.2 bits, "国民" and "共和国" on top.
const NO_BOS_SHORT: usize = 1;

/// Why the predictions after a very short plain prompt (at most
/// [`NO_BOS_SHORT`] tokens) are nearly flat when the model has no BOS to
/// put in front: `None` for a model that adds one, or a longer prompt.
fn no_bos_note(slot: &Slot, n_tokens: usize) -> Option<String> {
    let vocab = slot.model().vocab();
    let has_bos = vocab.should_add_bos() && valid_token(slot.model(), vocab.bos());
    (!has_bos && n_tokens <= NO_BOS_SHORT).then(|| {
        format!(
            "this model adds no BOS (beginning-of-sequence) token, so the prompt's {} is all \
             it reads, with nothing before it to start from: the first predictions of such a \
             model can be nearly flat (Qwen2.5 Coder 0.5B: 12.8 bits of entropy after \
             \"中华人民\" alone, 3.2 after \"中华人民共和\"); a few more words of prompt give \
             it something to go on",
            crate::text::count(n_tokens, "token")
        )
    })
}

/// Tokens of `pieces` (template text parses control tokens, contents never
/// do), with a BOS in front when the model wants one and the template did not
/// write it; the flag says whether that BOS was added.
fn tokenize(slot: &Slot, pieces: &[PromptPiece]) -> (Vec<LlamaToken>, bool) {
    let model = slot.model();
    let vocab = model.vocab();
    let bos_text = &slot.special.bos;
    let starts_with_bos = !bos_text.is_empty()
        && pieces
            .first()
            .is_some_and(|p| p.special && p.text.starts_with(bos_text.as_str()));
    let mut tokens = Vec::new();
    let add_bos = vocab.should_add_bos() && !starts_with_bos && valid_token(model, vocab.bos());
    if add_bos {
        tokens.push(vocab.bos());
    }
    // Neighbouring pieces of the same kind are one text: tokenizing them apart
    // would change merges at the seam.
    let mut i = 0;
    while i < pieces.len() {
        let special = pieces[i].special;
        let mut text = String::new();
        while i < pieces.len() && pieces[i].special == special {
            text.push_str(&pieces[i].text);
            i += 1;
        }
        tokens.extend(vocab.tokenize(text.as_bytes(), false, special));
    }
    (tokens, add_bos)
}

/// Tokens of `text` as plain text (never control tokens), no BOS: a reply prefix.
pub(super) fn tokenize_plain(model: &LlamaModel, text: &str) -> Vec<TokenId> {
    model
        .vocab()
        .tokenize(text.as_bytes(), false, false)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

fn prompt_text(pieces: &[PromptPiece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect()
}

/// Byte offset in the rendered text where each token starts (`None` for a
/// BOS added in front), from the tokens' pieces.
fn token_offsets(
    model: &LlamaModel,
    tokens: &[LlamaToken],
    bos_added: bool,
    pieces: &[PromptPiece],
) -> Vec<Option<usize>> {
    let rendered = prompt_text(pieces);
    let vocab = model.vocab();
    let skip = usize::from(bos_added);
    let token_pieces: Vec<Vec<u8>> = tokens[skip..]
        .iter()
        .map(|t| vocab.token_to_piece(*t, true, None))
        .collect();
    let mut starts = vec![None; skip];
    starts.extend(
        token_starts(rendered.as_bytes(), &token_pieces)
            .into_iter()
            .map(Some),
    );
    starts
}

/// Puts each assistant turn's own ids ([`ChatMessage::tokens`]) in place of
/// the tokens its content was tokenized into, where that is exact: the
/// content lies as it is in the rendered text (ending at `ends[i]`), tokens
/// start at both its ends (nothing straddles them), and the ids' bytes are
/// the content's in this vocabulary. Returns the tokens and their owners.
fn splice_own_ids(
    model: &LlamaModel,
    tokens: Vec<LlamaToken>,
    owners: Vec<Option<usize>>,
    starts: &[Option<usize>],
    rendered: &str,
    messages: &[ChatMessage],
    ends: &[Option<usize>],
) -> (Vec<LlamaToken>, Vec<Option<usize>>) {
    let vocab = model.vocab();
    // Each exact replacement: token range, message.
    let mut swaps: Vec<(std::ops::Range<usize>, Vec<TokenId>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (Some(ids), Some(Some(end))) = (&m.tokens, ends.get(i)) else {
            continue;
        };
        // Ids of another vocabulary (a reply written by another model, an
        // import) would abort llama.cpp when read: the text is used instead.
        if !ids.iter().all(|&id| super::slot::valid_id(model, id)) {
            continue;
        }
        // A reply's end-of-generation token is not its content: the template
        // writes its own end of turn.
        let n = ids.len()
            - ids
                .iter()
                .rev()
                .take_while(|&&id| vocab.is_eog(LlamaToken(id)))
                .count();
        let ids = &ids[..n];
        let content = m.content.as_bytes();
        let Some(start) = end.checked_sub(content.len()) else {
            continue;
        };
        if rendered.as_bytes().get(start..*end) != Some(content) || ids.is_empty() {
            continue;
        }
        let at = |offset: usize| starts.iter().position(|s| *s == Some(offset));
        let Some(a) = at(start) else { continue };
        let b = if *end == rendered.len() {
            tokens.len()
        } else {
            match at(*end) {
                Some(b) => b,
                None => continue,
            }
        };
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| vocab.token_to_piece(LlamaToken(id), true, None))
            .collect();
        if bytes == content && a < b {
            swaps.push((a..b, ids.to_vec()));
        }
    }
    if swaps.is_empty() {
        return (tokens, owners);
    }
    let (mut out, mut out_owners) = (Vec::new(), Vec::new());
    let mut t = 0;
    for (range, ids) in swaps {
        // The range's tokens all belong to its message.
        let owner = owners[range.start];
        out.extend_from_slice(&tokens[t..range.start]);
        out_owners.extend_from_slice(&owners[t..range.start]);
        out.extend(ids.iter().map(|&id| LlamaToken(id)));
        out_owners.extend(std::iter::repeat_n(owner, ids.len()));
        t = range.end;
    }
    out.extend_from_slice(&tokens[t..]);
    out_owners.extend_from_slice(&owners[t..]);
    (out, out_owners)
}

/// Byte offset in `text` where each token of `pieces` starts. A piece with
/// a leading space the text lacks (SentencePiece's added space prefix, at the
/// start and after control tokens) is aligned without it.
pub(super) fn token_starts(text: &[u8], pieces: &[Vec<u8>]) -> Vec<usize> {
    let mut at = 0;
    pieces
        .iter()
        .map(|p| {
            let start = at;
            let rest = text.get(at..).unwrap_or_default();
            at += if !rest.starts_with(p) && p.first() == Some(&b' ') && rest.starts_with(&p[1..]) {
                p.len() - 1
            } else {
                p.len()
            };
            start
        })
        .collect()
}

/// Byte offset in `rendered` where each message's content ends, searching in
/// order (a template may trim contents); `None` for one not found.
pub(super) fn content_ends(rendered: &str, messages: &[ChatMessage]) -> Vec<Option<usize>> {
    let mut cursor = 0;
    messages
        .iter()
        .map(|m| {
            let rest = &rendered[cursor..];
            let found = [m.content.as_str(), m.content.trim()]
                .into_iter()
                .find_map(|c| rest.find(c).map(|p| cursor + p + c.len()));
            if let Some(end) = found {
                cursor = end;
            }
            found
        })
        .collect()
}

/// The owner of each token starting at `starts[t]` (bytes; `None` for an
/// added BOS): the first message whose content ends after the start.
pub(super) fn owners(starts: &[Option<usize>], ends: &[Option<usize>]) -> Vec<Option<usize>> {
    starts
        .iter()
        .map(|s| {
            let s = (*s)?;
            ends.iter()
                .enumerate()
                .find(|(_, e)| e.is_some_and(|e| s < e))
                .map(|(i, _)| i)
        })
        .collect()
}

/// Gives each turn its closing: an end-of-generation token right after the
/// turn's last token (`<|im_end|>`, `<end_of_turn>`), and the blank tokens
/// (a line break) right after that, belong to the turn they close, not to
/// the next turn, whose header follows (nor to none, after the last turn).
/// `is_eog(t)` and `is_blank(t)` say what token `t` is.
pub(super) fn close_turns(
    owners: &mut [Option<usize>],
    is_eog: impl Fn(usize) -> bool,
    is_blank: impl Fn(usize) -> bool,
) {
    let mut t = 1;
    while t < owners.len() {
        let (closed, next) = (owners[t - 1], owners[t]);
        if closed.is_none() || closed == next || !is_eog(t) {
            t += 1;
            continue;
        }
        owners[t] = closed;
        t += 1;
        while t < owners.len() && owners[t] == next && is_blank(t) {
            owners[t] = closed;
            t += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_the_turn_they_open_or_sit_in() {
        let msgs = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Hi"),
        ];
        let text = "<s>sys: Be brief.</s><s>user: Hi</s><s>assistant:";
        let ends = content_ends(text, &msgs);
        assert_eq!(ends, [Some(17), Some(32)]);
        // "<s>" (0) and "Be" (8) → system; "</s>" after it (17) → user;
        // "Hi" (30) → user; the last closing and the reply's opening → none.
        let starts = [
            None,
            Some(0),
            Some(8),
            Some(17),
            Some(30),
            Some(32),
            Some(36),
        ];
        assert_eq!(
            owners(&starts, &ends),
            [None, Some(0), Some(0), Some(1), Some(1), None, None]
        );
    }

    #[test]
    fn a_turns_closing_token_and_line_break_are_that_turns() {
        let text: Vec<&str> =
            "<s>|sys|\n|Be brief|<end>|\n|<s>|user|\n|Hi|<end>|\n|<s>|assistant|\n"
                .split('|')
                .collect();
        // One character per token: its message, `-` for none.
        let owners_of = |s: &str| -> Vec<Option<usize>> {
            s.chars()
                .map(|c| c.to_digit(10).map(|d| d as usize))
                .collect()
        };
        let mut owners = owners_of("-000111111-----");
        close_turns(
            &mut owners,
            |t| text[t] == "<end>",
            |t| text[t].trim().is_empty(),
        );
        assert_eq!(owners, owners_of("-00000111111---"));
    }

    #[test]
    fn an_added_space_prefix_does_not_shift_the_offsets() {
        let text = b"<s>Hi there<e>Bye";
        let pieces: Vec<Vec<u8>> = ["<s>", " Hi", " there", "<e>", " By", "e"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        assert_eq!(token_starts(text, &pieces), [0, 3, 5, 11, 14, 16]);
    }

    #[test]
    fn contents_end_where_the_sentinels_put_them() {
        let msgs = [
            ChatMessage::new(Role::System, "help"),
            ChatMessage::new(Role::User, "Hi"),
        ];
        let s = |i: usize| format!("\u{F8F0}{i}\u{F8F1}");
        // "help" also appears in the template's own text, before the content.
        let rendered = format!("helpful: {}|user: {}|", s(0), s(1));
        let ends = template::sentinel_content_ends(&rendered, &msgs).unwrap();
        assert_eq!(ends, [Some(13), Some(22)]);
        assert_eq!(
            content_ends("helpful: help|user: Hi|", &msgs)[0],
            Some(4),
            "what a search finds"
        );
    }

    #[test]
    fn a_trimmed_or_missing_content_is_searched_in_order() {
        let msgs = [
            ChatMessage::new(Role::User, "  Hi  "),
            ChatMessage::new(Role::Assistant, "gone"),
            ChatMessage::new(Role::User, "Hi"),
        ];
        let text = "U: Hi\nU: Hi\n";
        // The first "Hi" is the trimmed first message; the second message is
        // not there; the third finds the second "Hi", not the first again.
        assert_eq!(content_ends(text, &msgs), [Some(5), None, Some(11)]);
    }
}
