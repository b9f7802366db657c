fn main() {
    std::process::exit(pipetrim::cli::main());
}
