//! The chat (`tokenscope` with no subcommand): the full-screen TUI on the
//! model picked from the flags and the config, with the configured servers
//! offered in its model picker.

use anyhow::Result;

use super::{Ctx, own_exe, pick_model, remote_target};
use crate::engine::ModelRef;
use crate::engine::remote::RemoteTarget;
use crate::tui;

/// Opens the chat. `resume`: reopen the last conversation, on its own model
/// unless one is named (`--model`, the config's, `--server`). Errors: a
/// config or server that cannot be used, the TUI failing to start.
pub fn main(ctx: &Ctx, resume: bool) -> Result<()> {
    let flags = &ctx.flags;
    let config = ctx.config()?;
    let places = ctx.places(&config);
    let remote = remote_target(&config, flags)?;
    let initial = match &remote {
        // The server's model named by --model (none: its only one).
        Some(t) => Some(ModelRef::Remote {
            url: t.url.clone(),
            model: flags.model.clone().unwrap_or_default(),
        }),
        None => pick_model(&config, &places)?.map(|c| ModelRef::Local(c.path)),
    };
    // Resuming, the conversation's own model wins unless one is named.
    let named = flags.model.is_some() || config.default_model.is_some() || remote.is_some();
    let (initial, fallback) = if resume && !named {
        (None, initial)
    } else {
        (initial, None)
    };
    let mut servers: Vec<_> = config
        .servers
        .iter()
        .map(|sv| {
            let t = config
                .server_target(&sv.name, None, |k| std::env::var(k).ok())
                .map_err(|e| e.to_string());
            (sv.name.clone(), t)
        })
        .collect();
    // The server of --server first (with its key): a [[servers]]
    // entry of the same URL gives it its name.
    if let Some(t) = &remote {
        let same = |s: &Result<RemoteTarget, String>| s.as_ref().is_ok_and(|s| s.url == t.url);
        let name = servers
            .iter()
            .find(|(_, s)| same(s))
            .map_or_else(|| t.url.clone(), |(n, _)| n.clone());
        servers.retain(|(_, s)| !same(s));
        servers.insert(0, (name, Ok(t.clone())));
    }
    tui::run(tui::TuiOptions {
        servers,
        engine_exe: own_exe()?,
        config,
        initial_model: initial,
        places,
        raw: flags.raw,
        conversations_db: Some(ctx.paths.conversations_db()),
        resume,
        fallback_model: fallback,
    })
}
