//! The `isolate` binary: everything lives in the library; `cli::main` parses, runs and turns
//! the error chain into the exit code.
fn main() {
    std::process::exit(isolate::cli::main());
}
