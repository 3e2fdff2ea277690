//! The `beian` binary: see `beian --help`.

fn main() -> std::process::ExitCode {
    beian::cli::main()
}
