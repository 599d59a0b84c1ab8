package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// readBufferBytes is the read buffer per connection, the size of the
// built-in servers' buffer.
const readBufferBytes = 64 << 10

const (
	requestHeaderBytes  = 4
	responseHeaderBytes = 8
)

var errEOFInsideFrame = errors.New("protocol error: EOF inside a frame")

// serveFrames answers frame requests. Each batch is what one read brought
// in: its response headers and the payload bytes (slices of the bufio
// buffer, never copied) go out in one writev through net.Buffers. Payloads
// stream as they arrive, so memory stays at one read buffer plus one
// header per request in it, whatever len announces; a client that stops
// reading blocks the write, and so our reads (TCP's backpressure).
func serveFrames(conn *net.TCPConn, maxFrameBytes uint32) error {
	in := bufio.NewReaderSize(conn, readBufferBytes)
	var headers []byte     // this batch's response headers, reused
	var pieces net.Buffers // this batch's iovecs, reused
	var payloadLeft uint32 // bytes of the current payload still to come
	var seq uint32
	for {
		// Block for one more byte than a partial header already buffered,
		// or for any byte.
		need := 1
		if payloadLeft == 0 {
			need = in.Buffered() + 1
		}
		if _, err := in.Peek(need); err != nil {
			if err == io.EOF {
				if payloadLeft > 0 || in.Buffered() > 0 {
					return errEOFInsideFrame
				}
				return nil
			}
			return err
		}
		input, _ := in.Peek(in.Buffered())
		// Every request in input needs 4 bytes, so this bounds the headers
		// and keeps appends from moving the slab under earlier slices.
		if most := (len(input)/requestHeaderBytes + 1) * responseHeaderBytes; cap(headers) < most {
			headers = make([]byte, 0, most)
		}
		headers = headers[:0]
		batch := pieces[:0]
		used := 0
		var protocolErr error
		for {
			if payloadLeft > 0 {
				n := uint32(len(input) - used)
				if n > payloadLeft {
					n = payloadLeft
				}
				if n == 0 {
					break
				}
				batch = append(batch, input[used:used+int(n)])
				used += int(n)
				payloadLeft -= n
				continue
			}
			if len(input)-used < requestHeaderBytes {
				break // a partial header waits in the buffer
			}
			length := binary.BigEndian.Uint32(input[used:])
			if length > maxFrameBytes {
				protocolErr = fmt.Errorf("protocol error: frame length %d above --max-frame %d", length, maxFrameBytes)
				break
			}
			used += requestHeaderBytes
			start := len(headers)
			headers = binary.BigEndian.AppendUint32(headers, length)
			headers = binary.BigEndian.AppendUint32(headers, seq)
			seq++ // 32-bit on the wire: wraps like the built-in servers'
			batch = append(batch, headers[start:])
			payloadLeft = length
		}
		// Kept for reuse: WriteTo consumes the slice it is called on.
		pieces = batch[:0]
		// The answers before a bad header are still owed to the client.
		if _, err := batch.WriteTo(conn); err != nil {
			return err
		}
		if protocolErr != nil {
			return protocolErr
		}
		in.Discard(used)
	}
}

// serveEcho writes every byte back in order with a plain read/write loop.
// Not io.Copy(conn, conn): on Linux that splices socket to socket inside
// the runtime, a different copy strategy than a Go service's usual one.
// The client's half-close ends the loop after everything read was written.
func serveEcho(conn *net.TCPConn) error {
	buffer := make([]byte, readBufferBytes)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
