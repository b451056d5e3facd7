//! The layer lens popup's data: which token it looks at, the engine's
//! answer, and what the attention view shows (a layer, the heads' mean or
//! one head) as a heat over the chat's tokens.

use super::TokenRef;
use crate::engine::{LensResult, RequestId};

/// The lens of one token: the model's prediction of it after each layer
/// (the token cursor's token).
#[derive(Debug, Clone)]
pub struct LensView {
    /// The token predicted, a token of the chat.
    pub at: TokenRef,
    /// `'Paris' (token 12 of the reply)`: what the title says.
    pub label: String,
    /// The request in flight, while one is.
    pub request: Option<RequestId>,
    pub result: Option<Box<LensResult>>,
    /// Why there is no lens (refused, failed), in words.
    pub error: Option<String>,
    /// First grid row shown.
    pub scroll: u16,
    /// The attention view, when shown instead of the grid.
    pub attention: Option<AttentionSel>,
    /// The chat token at each position of the lensed context (`None`:
    /// template scaffolding or a prompt position whose turn is not known).
    pub places: Vec<Option<TokenRef>>,
}

/// What the attention view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionSel {
    /// Index into [`LensResult::attention`].
    pub layer: usize,
    /// One head, or `None` for the heads' mean.
    pub head: Option<usize>,
}

impl LensView {
    /// The attention weight on chat token `t` in the view's layer and head,
    /// when the attention view is shown and `t` is in the lensed context.
    pub fn attention_on(&self, t: TokenRef) -> Option<f32> {
        let sel = self.attention?;
        let layer = self.result.as_ref()?.attention.get(sel.layer)?;
        let pos = self.places.iter().position(|p| *p == Some(t))?;
        match sel.head {
            None => layer.mean.get(pos).copied(),
            Some(h) => layer.heads.get(h)?.get(pos).copied(),
        }
    }
}
