// Command go-server is a reference peer for epoll-bench (peers/README.md):
// the frame and echo wire protocols served the way a Go service usually
// is, one goroutine per connection on the runtime's netpoller, so that its
// syscalls and CPU per request can be measured beside the built-in servers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// defaultMaxFrameBytes is the built-in servers' default --max-frame (16 MiB).
const defaultMaxFrameBytes = 16 << 20

// acceptRetryPause follows a failed Accept (EMFILE and the like): retrying
// at once would spin while the listener stays readable.
const acceptRetryPause = 100 * time.Millisecond

func main() {
	log.SetFlags(0)
	log.SetPrefix("go-server: ")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on; port 0 picks a free port (printed first)")
	protocol := flag.String("protocol", "frame", "wire protocol: frame or echo")
	maxFrame := flag.Uint("max-frame", defaultMaxFrameBytes, "largest frame payload in bytes; a larger len closes the connection")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected argument %q", flag.Arg(0))
	}
	if *maxFrame > 1<<32-1 {
		log.Fatalf("--max-frame %d does not fit the 32-bit len field", *maxFrame)
	}
	var serve func(*net.TCPConn) error
	switch *protocol {
	case "frame":
		limit := uint32(*maxFrame)
		serve = func(c *net.TCPConn) error { return serveFrames(c, limit) }
	case "echo":
		serve = serveEcho
	default:
		log.Fatalf("--protocol %q: expected frame or echo", *protocol)
	}

	// Registered before listening, so a signal right after the
	// `listening on` line is never the default (a kill without exit 0).
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *addr, err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	go acceptLoop(listener.(*net.TCPListener), serve)
	<-signals
	// Open connections close with the process.
	listener.Close()
}

func acceptLoop(listener *net.TCPListener, serve func(*net.TCPConn) error) {
	for {
		conn, err := listener.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Printf("accept failed, retrying shortly: %v", err)
			time.Sleep(acceptRetryPause)
			continue
		}
		go func() {
			defer conn.Close()
			if err := serve(conn); err != nil {
				log.Printf("%s: closed: %v", conn.RemoteAddr(), err)
			}
		}()
	}
}
