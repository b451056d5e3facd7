//! Framing of the engine protocol over a pipe: each [`super::Command`] or
//! [`super::Event`] is one frame, a u32 little-endian length then that many
//! bytes of `postcard` (serde, compact binary: varint integers, raw f32s).
//!
//! Why postcard rather than JSON lines: a token event with the inspector on
//! carries up to 256 candidates (id, logit, sampled probability each);
//! postcard encodes one in about a quarter of JSON's bytes and without float
//! formatting/parsing, and keeps any float as is (a NaN or infinite logit),
//! which JSON cannot. The cost per token is a few µs either way (see
//! `tokenscope bench`); the length prefix makes a cut frame detectable.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest frame accepted, in bytes (a garbled length must not allocate gigabytes).
pub const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Codec(#[from] postcard::Error),
    #[error("bad frame: {0} bytes is more than the {MAX_FRAME} allowed")]
    TooLarge(usize),
    #[error("the stream ended inside a frame")]
    Truncated,
}

/// Writes `msg` as one frame to `w` and flushes; `buf` is scratch space kept
/// between calls.
pub fn write<T: Serialize, W: Write>(
    w: &mut W,
    buf: &mut Vec<u8>,
    msg: &T,
) -> Result<(), FrameError> {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    let mut out = postcard::to_extend(msg, std::mem::take(buf))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    let result = w.write_all(&out).and_then(|()| w.flush());
    *buf = out;
    Ok(result?)
}

/// Reads one frame from `r`: `Ok(None)` at a clean end of stream (between
/// frames). `buf` is scratch space kept between calls.
pub fn read<T: DeserializeOwned, R: Read>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(postcard::from_bytes(buf)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Candidate, Distribution, EngineError, Event, TokenStep, Vocab};

    /// Rollouts cross the pipe with and without each token's trace (an
    /// optional field that serde skipped would make postcard's frame
    /// unreadable, and the child be killed as not understood).
    #[test]
    fn rollouts_round_trip_with_and_without_their_traces() {
        use crate::engine::{Rollout, RolloutToken};
        let token = |dist: Option<Distribution>, p_sampled| RolloutToken {
            id: 5,
            text: " a".into(),
            p: 0.25,
            logit: 1.5,
            p_sampled,
            dist,
        };
        let dist = Distribution {
            lse: 2.9,
            entropy: Some(1.0),
            top: vec![Candidate {
                id: 5,
                logit: 1.5,
                p_sampled: None,
            }],
        };
        let event = Event::Rollouts {
            request: 4,
            rollouts: vec![Rollout {
                rank: 1,
                tokens: vec![token(None, None), token(Some(dist), Some(1.0))],
                log_likelihood: -2.7,
                mean_p: 0.25,
            }],
        };
        let (mut wire, mut buf) = (Vec::new(), Vec::new());
        write(&mut wire, &mut buf, &event).unwrap();
        write(&mut wire, &mut buf, &event).unwrap();
        let mut r = wire.as_slice();
        for _ in 0..2 {
            assert_eq!(
                read::<Event, _>(&mut r, &mut buf).unwrap(),
                Some(event.clone())
            );
        }
    }

    #[test]
    fn events_round_trip_and_the_stream_ends_cleanly() {
        let step = TokenStep {
            index: 3,
            id: 42,
            forced: true,
            text: String::new(),
            logit: Some(f32::NAN),
            p_sampled: None,
            dist: Some(Distribution {
                lse: 9.0,
                entropy: Some(2.0),
                top: vec![Candidate {
                    id: 7,
                    logit: 3.5,
                    p_sampled: Some(0.0),
                }],
            }),
        };
        let events = [
            Event::Token {
                request: 9,
                step: Box::new(step),
            },
            Event::Failed {
                request: u64::MAX,
                error: EngineError::PromptTooLong {
                    n_prompt: 9,
                    n_ctx: 8,
                },
            },
            Event::Loaded {
                request: 1,
                slot: 3,
                info: Box::new(crate::tui::bench::fake_model("m", "Q4_0")),
                vocab: std::sync::Arc::new(Vocab {
                    pieces: vec![vec![0xE4], b"<|im_end|>".to_vec()],
                    eog: vec![1],
                    learned: Default::default(),
                }),
                caps: crate::engine::Capabilities::local(),
            },
        ];
        let (mut wire, mut buf) = (Vec::new(), Vec::new());
        for e in &events {
            write(&mut wire, &mut buf, e).unwrap();
        }
        let mut r = wire.as_slice();
        let Some(Event::Token { request: 9, step }) = read::<Event, _>(&mut r, &mut buf).unwrap()
        else {
            panic!("a token event");
        };
        assert!(step.logit.unwrap().is_nan(), "NaN crosses the pipe as is");
        assert_eq!(step.p_sampled, None);
        assert_eq!(step.top()[0].p_sampled, Some(0.0));
        for e in &events[1..] {
            assert_eq!(
                read::<Event, _>(&mut r, &mut buf).unwrap().as_ref(),
                Some(e)
            );
        }
        assert!(read::<Event, _>(&mut r, &mut buf).unwrap().is_none());
        // A stream cut inside a frame is an error, not a clean end.
        let mut cut = &wire[..wire.len() - 1];
        for _ in 1..events.len() {
            read::<Event, _>(&mut cut, &mut buf).unwrap();
        }
        assert!(matches!(
            read::<Event, _>(&mut cut, &mut buf),
            Err(FrameError::Truncated)
        ));
        let mut huge = &u32::MAX.to_le_bytes()[..];
        assert!(matches!(
            read::<Event, _>(&mut huge, &mut buf),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn paths_that_are_not_utf8_cross_the_pipe() {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/m/caf\xe9.gguf"));
        let model = crate::engine::ModelRef::Local(path);
        let cmd = crate::engine::Command::Load {
            request: 1,
            slot: 0,
            model: model.clone(),
            settings: Default::default(),
        };
        let (mut wire, mut buf) = (Vec::new(), Vec::new());
        write(&mut wire, &mut buf, &cmd).unwrap();
        let back: crate::engine::Command = read(&mut wire.as_slice(), &mut buf).unwrap().unwrap();
        assert!(matches!(back, crate::engine::Command::Load { model: m, .. } if m == model));
    }
}
