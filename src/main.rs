//! Binary entry: set up logging, parse arguments, run, map the result to an
//! exit code (see `error` for the table). The only place `anyhow`-style
//! reporting would live; errors here are already typed.
//!
//! Logging (tracing, level from `EXPORT_CENTER_LOG`, default `warn`) goes to
//! stderr, in colour only when stderr is a terminal and `NO_COLOR` is unset
//! or empty; write errors are ignored (a closed stderr must not stop a build).

use std::io::{IsTerminal, Write};

use clap::Parser;

/// Stderr for tracing: swallows write errors, so neither tracing nor its
/// internal-error fallback (`eprintln!`, which would panic) ever sees one.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Colour on a terminal only, and never when `NO_COLOR` is set non-empty.
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXPORT_CENTER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(|| QuietStderr)
        .with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")))
        .log_internal_errors(false)
        .without_time()
        .init();
    let cli = match export_center::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // the library reads no environment variable: the ones it honours are read here
    export_center::cache::set_fsync_each(std::env::var("EXPORT_CENTER_FSYNC").is_ok_and(|v| v == "always"));
    let code = match export_center::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::new(e);
            export_center::cli::err(format_args!("error: {e}"));
            e.downcast_ref::<export_center::Error>().map_or(1, |x| x.exit_code())
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
