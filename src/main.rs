//! The `oretrail` binary: the command-line interface to the library.

fn main() -> std::process::ExitCode {
    oretrail::cli::main()
}
