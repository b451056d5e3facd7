//! The language the app speaks to a person (English or Simplified Chinese)
//! and the messages in it.
//!
//! One place decides the language ([`choose`]): `--lang`, else the config's
//! `lang`, else the locale variables in POSIX order (`LC_ALL`, `LC_MESSAGES`,
//! `LANG`: the first set and non-empty wins); a value starting with `zh` is
//! Chinese, anything else English. [`set`] fixes it once at start for the
//! whole process, so rendering stays a pure function of the state.
//!
//! Messages are Project Fluent files (`i18n/en.ftl`, written from the
//! source; the Chinese in `i18n/zh.ftl` and `i18n/zh-*.ftl`, one file per
//! area of the app), embedded in the binary (`include_str!`) so it works from
//! any directory. Fluent (`fluent-bundle`, the reference implementation,
//! maintained by the Project Fluent team) was chosen over macro-based crates
//! because its files are plain text a translator can edit, it has named
//! arguments (`{ $n }`) whose order a language may change, and it needs no
//! build script or proc macro.
//!
//! Code asks for a message by id *with its English text* ([`tr`],
//! [`tr_args`]): the English in the source keeps the code readable, and a
//! string added without a translation still shows (in English) rather than
//! failing. A test (`every_message_id_used_in_the_source_is_in_both_files`)
//! reads src/ for every `tr("id", "English")` call and every keymap row, and
//! fails naming each id that `zh.ftl` lacks or whose English in `en.ftl`
//! differs from the source (so a changed English text gets its Chinese
//! looked at again).

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, the default.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The language a `--lang` value, a config's `lang` or a locale names:
    /// `zh…` (`zh`, `zh_CN.UTF-8`, `zh-TW`) is Chinese, `en…`, `C`, `POSIX`
    /// and anything else English.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The short code (`en`, `zh`), as `--lang` and the config take it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// The values `--lang` and the config's `lang` accept.
pub const CODES: [&str; 2] = ["en", "zh"];

/// Decides the language: `flag` (`--lang`), else `config` (the config
/// file's `lang`), else the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that
/// `env` reports set and non-empty; none of them: English.
pub fn choose(
    flag: Option<&str>,
    config: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Lang {
    if let Some(tag) = flag.or(config) {
        return Lang::from_tag(tag);
    }
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()))
        .map_or(Lang::En, |v| Lang::from_tag(&v))
}

/// 0: not set (English); 1: English; 2: Chinese.
static LANG: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A test's language for its own thread ([`with_lang`]), over [`LANG`].
    static OVERRIDE: Cell<Option<Lang>> = const { Cell::new(None) };
}

/// Sets the process's language; called once at start, before any message
/// is shown.
pub fn set(lang: Lang) {
    LANG.store(
        match lang {
            Lang::En => 1,
            Lang::Zh => 2,
        },
        Ordering::Relaxed,
    );
}

/// The language in use (English until [`set`]).
pub fn lang() -> Lang {
    if let Some(l) = OVERRIDE.with(Cell::get) {
        return l;
    }
    match LANG.load(Ordering::Relaxed) {
        2 => Lang::Zh,
        _ => Lang::En,
    }
}

/// Runs `f` with `lang` as this thread's language (tests render both
/// languages side by side in one process; the app uses [`set`]).
pub fn with_lang<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    let before = OVERRIDE.with(|o| o.replace(Some(lang)));
    let out = f();
    OVERRIDE.with(|o| o.set(before));
    out
}

/// The message files' text, by language.
pub fn source(lang: Lang) -> &'static str {
    match lang {
        Lang::En => include_str!("../i18n/en.ftl"),
        // One file per area, so translators (and parallel branches) do not
        // edit the same lines; each ends with a new line.
        Lang::Zh => concat!(
            include_str!("../i18n/zh.ftl"),
            include_str!("../i18n/zh-views.ftl"),
            include_str!("../i18n/zh-popups.ftl"),
            include_str!("../i18n/zh-cli.ftl"),
            include_str!("../i18n/zh-engine.ftl"),
            include_str!("../i18n/zh-tools.ftl"),
        ),
    }
}

/// The bundle of `lang`, parsed on first use. A syntax error in a file is
/// caught by the tests; at run time the entries that parsed are kept.
fn bundle(lang: Lang) -> &'static FluentBundle<FluentResource> {
    static EN: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    static ZH: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    let cell = match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    };
    cell.get_or_init(|| {
        let tag = lang
            .code()
            .parse()
            .expect("en and zh are valid language tags");
        let mut bundle = FluentBundle::new_concurrent(vec![tag]);
        // No Unicode isolation marks around arguments: a terminal shows
        // them as stray characters.
        bundle.set_use_isolating(false);
        let resource = FluentResource::try_new(source(lang).to_owned()).unwrap_or_else(|(r, _)| r);
        // Duplicate ids: the first one stays (a test rejects them).
        let _ = bundle.add_resource(resource);
        bundle
    })
}

/// The message `id` in the current language; `english` when the language is
/// English or the message file lacks it (a string not yet translated).
pub fn tr(id: &str, english: &'static str) -> String {
    tr_args(id, english, &[])
}

/// [`tr`] with named arguments: `{ $name }` in the message (and in
/// `english`) becomes the value of `name` in `args`.
pub fn tr_args(id: &str, english: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    if lang() == Lang::Zh
        && let Some(text) = format(bundle(Lang::Zh), id, args)
    {
        return text;
    }
    fill(english, args)
}

/// The message `id` in the current language when its file has it (an id
/// made at run time, such as a command-line argument's; English: `None`,
/// the caller keeps its own text).
pub fn tr_id(id: &str) -> Option<String> {
    match lang() {
        Lang::Zh => format(bundle(Lang::Zh), id, &[]),
        Lang::En => None,
    }
}

/// `id` of `bundle` formatted with `args`, if it has it.
fn format(
    bundle: &FluentBundle<FluentResource>,
    id: &str,
    args: &[(&str, &dyn std::fmt::Display)],
) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let mut fargs = FluentArgs::new();
    for (name, value) in args {
        // Strings, not numbers: the caller formats numbers as it wants them
        // shown (decimals, units), the same in both languages.
        fargs.set(*name, FluentValue::from(value.to_string()));
    }
    let mut errors = Vec::new();
    Some(
        bundle
            .format_pattern(pattern, Some(&fargs), &mut errors)
            .into_owned(),
    )
}

/// `english` with each `{ $name }` replaced by its argument.
fn fill(english: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = english.to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{ ${name} }}"), &value.to_string());
    }
    out
}

/// The ids a message file defines, in file order (tests and the parity
/// check read it).
pub fn ids(lang: Lang) -> Vec<String> {
    let resource = match FluentResource::try_new(source(lang).to_owned()) {
        Ok(r) | Err((r, _)) => r,
    };
    resource
        .entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
