//! Binary entry: parse arguments, run, map the result to an exit code
//! (see `error` for the table). The only place `anyhow`-style reporting
//! would live; errors here are already typed.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXPORT_CENTER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
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
    let code = match export_center::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::new(e);
            eprintln!("error: {e}");
            e.downcast_ref::<export_center::Error>().map_or(1, |x| x.exit_code())
        }
    };
    std::process::exit(code);
}
