//! The `userport` executable: parse the arguments, run, map errors to exit codes
//! (0 ok, 1 problems found, 2 usage or runtime error). A closed output pipe is success.

use std::process::ExitCode;

use clap::Parser;
use userport::cli::{self, Cli};
use userport::error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    userport::temp::install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Plans of deep expressions are walked recursively by DataFusion.
        .thread_stack_size(8 << 20)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("userport: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(cli::run(cli));
    userport::temp::finish();
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref::<Error>(), Some(Error::Failed(_))) => {
            eprintln!("userport: {e:#}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("userport: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the failure was only that the reader of our output went away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<Error>()
            .is_some_and(Error::is_broken_pipe)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
