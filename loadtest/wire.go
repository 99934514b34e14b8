package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// The load tool shares the gateway's cores in a soak, so what it spends
// per request is taken from the gateway. net/http's client spends it on
// a reader and a writer goroutine per connection, a request and a
// response with their header maps, and the hand-offs between them: 0.058
// ms of CPU per verify-otp in a 300,000-send soak, more than half of the
// gateway's 0.102 ms. wireClient speaks the little HTTP/1.1 the tool needs
// (POST a JSON body on a kept-alive connection, read the status, discard
// the body) from the goroutine that asks, with one buffer per connection:
// 0.025 ms per verify-otp in the same soak (docs/performance.md).

// wireTimeout bounds one request, as the net/http client's Timeout did.
const wireTimeout = 30 * time.Second

// wireIdle is how long a connection may sit unused before it is closed
// instead of reused: well under the gateway's idle timeout (2 minutes),
// so that no request is written to a connection the server is closing.
const wireIdle = 10 * time.Second

// maxWireHeader bounds a response's header (each line must also fit the
// connection's 4 KiB buffer).
const maxWireHeader = 1 << 20

// errWire is a response the wire client cannot read.
var errWire = errors.New("loadtest: malformed HTTP response")

// wireClient makes POST requests to one plain-HTTP host. Its connections
// are kept for reuse; it is safe for concurrent use.
type wireClient struct {
	addr string // host:port to dial
	host string // the Host header
	idle chan *wireConn
}

// wireConn is one kept-alive connection.
type wireConn struct {
	c    net.Conn
	br   *bufio.Reader
	buf  []byte    // the request being written
	used time.Time // when its last answer was read; zero until then
}

// errNoAnswer is a connection that failed before an answer's first line:
// the request could not be written, or nothing came back.
var errNoAnswer = errors.New("loadtest: no answer")

// newWireClient returns a client for base (http://host[:port]) that keeps
// up to conns idle connections, or an error for a URL it cannot speak to
// (https, a path, ...): the caller then uses net/http.
func newWireClient(base string, conns int) (*wireClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("loadtest: wire client speaks plain http to a host only, not %q", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &wireClient{addr: addr, host: u.Host, idle: make(chan *wireConn, conns)}, nil
}

// post sends body to path with the API key and returns the answer's
// status, or 0 when there was none (the connection is then dropped). A
// kept-alive connection that the server closed while it sat idle is
// replaced and the request sent again on a new one, once: the server read
// nothing of it (net/http's client drops such connections as they close).
func (w *wireClient) post(ctx context.Context, path, key string, body []byte) int {
	c, err := w.get(ctx)
	if err != nil {
		return 0
	}
	st, keep, err := c.roundTrip(ctx, w.host, path, key, body)
	if !c.used.IsZero() && stale(ctx, err) {
		c.c.Close()
		if c, err = w.dial(ctx); err != nil {
			return 0
		}
		st, keep, err = c.roundTrip(ctx, w.host, path, key, body)
	}
	if err != nil {
		st, keep = 0, false
	}
	// Once ctx has ended, its AfterFunc may set a past deadline on the
	// connection at any moment: it is not reused.
	if keep && ctx.Err() == nil {
		c.used = time.Now()
		select {
		case w.idle <- c:
			return st
		default:
		}
	}
	c.c.Close()
	return st
}

// stale says whether err, from a kept-alive connection, is the server
// having closed it while it sat idle: the write refused, or the end (or a
// reset) before any answer. The server then read none of the request.
func stale(ctx context.Context, err error) bool {
	return ctx.Err() == nil && errors.Is(err, errNoAnswer) &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// get takes an idle connection that is still fresh, or dials one.
func (w *wireClient) get(ctx context.Context) (*wireConn, error) {
	for {
		select {
		case c := <-w.idle:
			if time.Since(c.used) < wireIdle {
				return c, nil
			}
			c.c.Close()
			continue
		default:
		}
		return w.dial(ctx)
	}
}

// dial opens a new connection.
func (w *wireClient) dial(ctx context.Context) (*wireConn, error) {
	d := net.Dialer{Timeout: wireTimeout}
	nc, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return nil, err
	}
	return &wireConn{c: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

// close closes the idle connections.
func (w *wireClient) close() {
	for {
		select {
		case c := <-w.idle:
			c.c.Close()
		default:
			return
		}
	}
}

// roundTrip writes one request and reads its answer whole. keep says
// whether the connection can carry another. An error before the answer's
// first line (the write's included) wraps errNoAnswer. The request ends
// at wireTimeout, or when ctx does (its deadline included).
func (c *wireConn) roundTrip(ctx context.Context, host, path, key string, body []byte) (status int, keep bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if err := c.c.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		return 0, false, err
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b := c.buf[:0]
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, key...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return readResponse(c.br)
}

// readResponse reads one HTTP/1.1 response from br and discards its body:
// by Content-Length, chunked, or up to the end of the connection. An error
// before the answer's first line is whole wraps errNoAnswer.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	// "HTTP/1.1 200 OK"
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return 0, false, errWire
	}
	status, err = strconv.Atoi(string(rest[:3]))
	// 1xx too: the tool asks for no 100-continue or upgrade.
	if err != nil || status < 200 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false, errWire
	}
	keep = string(proto) == "HTTP/1.1"
	length, chunked := int64(-1), false
	size := len(line)
	for {
		h, err := readLine(br)
		if err != nil {
			return 0, false, err
		}
		if size += len(h); size > maxWireHeader {
			return 0, false, errWire
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, errWire
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || len(value) == 0 || value[0] < '0' || value[0] > '9' || (length >= 0 && n != length) {
				return 0, false, errWire
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return 0, false, errWire
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				if bytes.EqualFold(bytes.TrimSpace(tok), []byte("close")) {
					keep = false
				}
			}
		}
	}
	switch {
	case status == http.StatusNoContent || status == http.StatusNotModified:
		return status, keep, nil
	case chunked:
		if length >= 0 {
			return 0, false, errWire // both: a smuggling shape, not a gateway's answer
		}
		return status, keep, discardChunks(br)
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, keep, err
	default:
		_, err = io.Copy(io.Discard, br)
		return status, false, err
	}
}

// discardChunks reads a chunked body and its trailer.
func discardChunks(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return errWire
		}
		if n == 0 {
			for { // trailer, up to its empty line
				t, err := readLine(br)
				if err != nil {
					return err
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return errWire
		}
	}
}

// readLine reads a line ending in CRLF (or LF) and returns it without
// the ending; it is valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errWire
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
