fn main() {
    std::process::exit(epoll_bench::cli::main());
}
