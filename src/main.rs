// The `isolate` binary: parse arguments, set up logging, run, and turn the error chain into
// an exit code. Everything else lives in the library.
fn main() {
    std::process::exit(isolate::cli::main());
}
