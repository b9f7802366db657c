/// mimalloc instead of glibc's malloc: the engine allocates many small
/// strings and memos on several threads, where glibc grows its per-thread
/// arenas a page at a time (a thousand `mprotect` calls per trim).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    pipetrim::timeline::start();
    std::process::exit(pipetrim::cli::main());
}
