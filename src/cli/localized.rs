//! The command line in the interface language: clap's help ([`localized`])
//! and its usage errors ([`localized_error`]). English is clap's own.

use std::fmt::Write as _;

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorFormatter, ErrorKind};

use crate::i18n::{Lang, lang, tr, tr_args, tr_id};

/// `command` (the parser of [`Cli`]) with its help in the interface
/// language: each command's `about` and each argument's help taken from the
/// message files by id (`cli-<command path>-about`, `cli-<command
/// path>-<argument id>`; the root's path is `tokenscope`), and clap's own
/// headings and `--help`/`--version` lines. English: `command` as derived.
pub fn localized(command: clap::Command) -> clap::Command {
    if lang() == Lang::En {
        return command;
    }
    let mut command = command;
    command.build();
    localize_command(command, "tokenscope")
}

/// One command of [`localized`] and, recursively, its subcommands.
fn localize_command(mut command: clap::Command, path: &str) -> clap::Command {
    if let Some(about) = tr_id(&format!("cli-{path}-about")) {
        // A long text only where clap has one (else `--help` takes the long layout).
        let long = command.get_long_about().is_some();
        command = command.about(about.clone());
        if long {
            command = command.long_about(about);
        }
    }
    if let Some(after) = tr_id(&format!("cli-{path}-after-help")) {
        command = command.after_help(after);
    }
    command = command
        .help_template(format!(
            "{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
            tr("cli-usage", "Usage:")
        ))
        // clap keeps headings as `&'static str`: leaked, once per command at start.
        .subcommand_help_heading(&*tr("cli-commands", "Commands").leak());
    let heading: &'static str = tr("cli-options", "Options").leak();
    let ids: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let help = match id.as_str() {
            "help" => Some(tr("cli-help", "Print help")),
            "version" => Some(tr("cli-version", "Print version")),
            // One text per argument id (`cli-arg-model`), or its own
            // where this command's help differs (`cli-tokenscope-info-model`).
            _ => tr_id(&format!("cli-{path}-{id}")).or_else(|| tr_id(&format!("cli-arg-{id}"))),
        };
        command = command.mut_arg(id, |a| {
            let positional = a.is_positional();
            let long = a.get_long_help().is_some();
            // An argument without a help text keeps none.
            let help = help.clone().filter(|_| a.get_help().is_some());
            // clap words `[default: …]` and `[possible values: …]` itself:
            // hidden, and said in the help text instead.
            let values = value_hints(&a);
            let a = if values.is_empty() {
                a
            } else {
                a.hide_default_value(true).hide_possible_values(true)
            };
            let help = if values.is_empty() {
                help
            } else {
                match help.or_else(|| a.get_help().map(ToString::to_string)) {
                    Some(h) => Some(format!("{h} {values}")),
                    None => Some(values),
                }
            };
            let a = match help {
                Some(h) if long => a.help(h.clone()).long_help(h),
                Some(h) => a.help(h),
                None => a,
            };
            if positional || a.get_help_heading().is_some() {
                a
            } else {
                a.help_heading(heading)
            }
        });
    }
    let subs: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in subs {
        // `help`'s subcommands say what the commands of the same names do.
        let sub_path = match path.strip_suffix("-help") {
            Some(root) => format!("{root}-{name}"),
            None => format!("{path}-{name}"),
        };
        command = command.mut_subcommand(name, |c| localize_command(c, &sub_path));
    }
    command
}

/// An argument's default and possible values as clap shows them after its
/// help (`[default: text] [possible values: text, jsonl]`), in the interface
/// language; empty where clap shows none.
fn value_hints(a: &clap::Arg) -> String {
    let mut hints = Vec::new();
    let takes_values = a.get_num_args().is_some_and(|n| n.takes_values());
    if takes_values && !a.is_hide_default_value_set() && !a.get_default_values().is_empty() {
        let values: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        hints.push(tr_args(
            "cli-default-value",
            "[default: { $value }]",
            &[("value", &values.join(" "))],
        ));
    }
    if !a.is_hide_possible_values_set() {
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !values.is_empty() {
            hints.push(tr_args(
                "cli-possible-values",
                "[possible values: { $values }]",
                &[("values", &values.join(", "))],
            ));
        }
    }
    hints.join(" ")
}

/// Prints `error` (a usage error clap found, or `--help`) and exits as clap
/// does (status 2 for a usage error, 0 for help), worded in the interface
/// language: the kinds a person meets (an unknown argument or subcommand, a
/// bad or missing value, a missing argument, a conflict) from the message
/// files, the rest (and everything in English) as clap words it.
pub fn exit_with(error: clap::Error) -> ! {
    if lang() == Lang::En || localized_message(&error).is_none() {
        error.exit()
    }
    error.apply::<Localized>().exit()
}

/// [`ErrorFormatter`] of [`localized_error`].
struct Localized;

impl ErrorFormatter for Localized {
    fn format_error(error: &clap::error::Error<Self>) -> StyledStr {
        let mut out = StyledStr::new();
        out.push_str(&tr_args(
            "cli-usage-error",
            "error: { $message }",
            &[("message", &localized_message(error).unwrap_or_default())],
        ));
        let suggestions = [
            ContextKind::SuggestedSubcommand,
            ContextKind::SuggestedArg,
            ContextKind::SuggestedValue,
        ];
        let mut first = true;
        for kind in suggestions {
            if let Some(v) = error.get(kind) {
                out.push_str(if first { "\n\n" } else { "\n" });
                first = false;
                let _ = write!(
                    out,
                    "  {}",
                    tr_args(
                        "cli-error-did-you-mean",
                        "tip: a similar one exists: '{ $value }'",
                        &[("value", &strings(v).join("', '"))],
                    )
                );
            }
        }
        if let Some(ContextValue::StyledStr(usage)) = error.get(ContextKind::Usage) {
            let usage = usage.to_string();
            let usage = usage.strip_prefix("Usage:").unwrap_or(&usage).trim_start();
            let _ = write!(out, "\n\n{} {usage}", tr("cli-usage", "Usage:"));
        }
        let _ = write!(
            out,
            "\n\n{}\n",
            tr("cli-error-try-help", "For more information, try '--help'.")
        );
        out
    }
}

/// A context value's strings (one or several).
fn strings(v: &ContextValue) -> Vec<String> {
    match v {
        ContextValue::String(s) => vec![s.clone()],
        ContextValue::Strings(s) => s.clone(),
        other => vec![other.to_string()],
    }
}

/// The first line of a localized usage error, or `None` where the error
/// lacks what the sentence needs (then clap's own wording stays).
fn localized_message<F: ErrorFormatter>(error: &clap::error::Error<F>) -> Option<String> {
    let get = |kind| error.get(kind).map(strings);
    let one = |kind| get(kind).and_then(|v| v.into_iter().next());
    let arg = one(ContextKind::InvalidArg);
    let value = one(ContextKind::InvalidValue);
    let list = |kind| get(kind).filter(|v| !v.is_empty()).map(|v| v.join(", "));
    let possible = |line: String| match list(ContextKind::ValidValue) {
        Some(values) => format!(
            "{line}\n  {}",
            tr_args(
                "cli-possible-values",
                "[possible values: { $values }]",
                &[("values", &values)],
            )
        ),
        None => line,
    };
    Some(match error.kind() {
        ErrorKind::UnknownArgument => tr_args(
            "cli-error-unknown-argument",
            "unexpected argument '{ $arg }' found",
            &[("arg", &arg?)],
        ),
        ErrorKind::InvalidSubcommand => tr_args(
            "cli-error-unknown-subcommand",
            "unrecognized subcommand '{ $command }'",
            &[("command", &one(ContextKind::InvalidSubcommand)?)],
        ),
        ErrorKind::InvalidValue if value.as_deref() == Some("") => possible(tr_args(
            "cli-error-missing-value",
            "a value is required for '{ $arg }' but none was supplied",
            &[("arg", &arg?)],
        )),
        ErrorKind::InvalidValue => possible(tr_args(
            "cli-error-invalid-value",
            "invalid value '{ $value }' for '{ $arg }'",
            &[("value", &value?), ("arg", &arg?)],
        )),
        ErrorKind::ValueValidation => {
            let line = tr_args(
                "cli-error-invalid-value",
                "invalid value '{ $value }' for '{ $arg }'",
                &[("value", &value?), ("arg", &arg?)],
            );
            match std::error::Error::source(error) {
                Some(why) => tr_args(
                    "cli-error-because",
                    "{ $line }: { $why }",
                    &[("line", &line), ("why", &parse_error(why))],
                ),
                None => line,
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = get(ContextKind::InvalidArg)?;
            let mut line = tr(
                "cli-error-missing-arguments",
                "the following required arguments were not provided:",
            );
            for m in missing {
                let _ = write!(line, "\n  {m}");
            }
            line
        }
        ErrorKind::MissingSubcommand => tr_args(
            "cli-error-missing-subcommand",
            "'{ $command }' requires a subcommand but one was not provided",
            &[("command", &one(ContextKind::InvalidSubcommand)?)],
        ),
        ErrorKind::ArgumentConflict => {
            let prior = list(ContextKind::PriorArg);
            match prior {
                Some(prior) if Some(&prior) != arg.as_ref() => tr_args(
                    "cli-error-conflict",
                    "the argument '{ $arg }' cannot be used with '{ $other }'",
                    &[("arg", &arg?), ("other", &prior)],
                ),
                _ => tr_args(
                    "cli-error-repeated",
                    "the argument '{ $arg }' cannot be used multiple times",
                    &[("arg", &arg?)],
                ),
            }
        }
        ErrorKind::TooManyValues => tr_args(
            "cli-error-too-many-values",
            "unexpected value '{ $value }' for '{ $arg }' found; no more were expected",
            &[("value", &value?), ("arg", &arg?)],
        ),
        _ => return None,
    })
}

/// Why a value did not parse, in the interface language where it is a
/// number's parse error (the standard library words those in English only).
fn parse_error(why: &(dyn std::error::Error + 'static)) -> String {
    use std::num::IntErrorKind;
    if let Some(e) = why.downcast_ref::<std::num::ParseIntError>() {
        return match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                tr("cli-error-out-of-range", "the number is out of range")
            }
            _ => tr("cli-error-not-an-integer", "not a whole number"),
        };
    }
    if why.is::<std::num::ParseFloatError>() {
        return tr("cli-error-not-a-number", "not a number");
    }
    why.to_string()
}
