module epoll-bench/peers/go-server

go 1.19
