use std::process::ExitCode;

fn main() -> ExitCode {
    netlat::cli::main()
}
