package loadtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadResponse: each shape of answer is read whole, the connection
// kept only when HTTP/1.1 allows it, and the reader left at the next
// answer; a malformed one is an error.
func TestReadResponse(t *testing.T) {
	const next = "HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name   string
		in     string
		status int
		keep   bool
		err    bool
		none   bool // the error says no answer began (errNoAnswer)
		atNext bool // the reader stops at the next answer
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"ok\": true}\n", status: 200, keep: true, atNext: true},
		{name: "header names any case, LF endings", in: "HTTP/1.1 429 Too Many Requests\ncontent-length:  2\n\nab", status: 429, keep: true, atNext: true},
		{name: "chunked with extension and trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", status: 200, keep: true, atNext: true},
		{name: "connection close", in: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc", status: 503, keep: false, atNext: true},
		{name: "connection close among tokens", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", status: 200, keep: false, atNext: true},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, keep: false, atNext: true},
		{name: "no content", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, keep: true, atNext: true},
		{name: "no length: body to the end", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, keep: false},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH\r\n\r\n", err: true},
		{name: "status not a number", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: true},
		{name: "status too long", in: "HTTP/1.1 2000 OK\r\n\r\n", err: true},
		{name: "informational", in: "HTTP/1.1 100 Continue\r\n\r\n", err: true},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", err: true},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: true},
		{name: "signed length", in: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab", err: true},
		{name: "two lengths that differ", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", err: true},
		{name: "chunked and a length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: true},
		{name: "other transfer encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: true},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: true},
		{name: "chunk without its CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n", err: true},
		{name: "body cut short", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: true},
		{name: "header cut short", in: "HTTP/1.1 200 OK\r\nContent-Len", err: true},
		{name: "end after the status line", in: "HTTP/1.1 200 OK\r\n", err: true},
		{name: "nothing", in: "", err: true, none: true},
		{name: "status line cut short", in: "HTTP/1.1 2", err: true, none: true},
		{name: "header line over the buffer", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.atNext {
				in += next
			}
			br := bufio.NewReaderSize(strings.NewReader(in), 4096)
			st, keep, err := readResponse(br)
			if tc.err {
				if err == nil {
					t.Fatalf("got status %d, keep %v, no error; want an error", st, keep)
				}
				if got := errors.Is(err, errNoAnswer); got != tc.none {
					t.Fatalf("got %v: no answer began %v, want %v (a request could be sent twice, or a dead connection not replaced)", err, got, tc.none)
				}
				return
			}
			if err != nil || st != tc.status || keep != tc.keep {
				t.Fatalf("got %d, keep %v, %v; want %d, keep %v", st, keep, err, tc.status, tc.keep)
			}
			if !tc.atNext {
				return
			}
			if st, _, err := readResponse(br); err != nil || st != 299 {
				t.Fatalf("the next answer: got %d, %v; want 299 (the reader stopped in the wrong place)", st, err)
			}
		})
	}
}

// rawServer accepts connections on 127.0.0.1 and answers each request
// it reads with answer(request number, the request); a nil answer leaves
// the request unanswered. With oneAnswer it closes each connection after
// its first answer, without saying so. It counts the connections it
// accepted and the requests it read.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	requests atomic.Int32
}

func startRawServer(t *testing.T, oneAnswer bool, answer func(n int, req *http.Request, body string) []byte) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						return
					}
					out := answer(int(s.requests.Add(1)), req, string(body))
					if out == nil {
						io.Copy(io.Discard, c) // hold the connection until the client drops it
						return
					}
					if _, err := c.Write(out); err != nil || oneAnswer {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// TestWireClient_Requests: the request carries the method, path, Host,
// API key, content type and body as net/http reads them; the connection
// is reused, and replaced when the server closes it or it sat too long.
func TestWireClient_Requests(t *testing.T) {
	bad := make(chan string, 10)
	s := startRawServer(t, false, func(n int, req *http.Request, body string) []byte {
		want := `{"n":` + strconv.Itoa(n) + `}`
		switch {
		case req.Method != http.MethodPost || req.URL.Path != verifyPath || req.Proto != "HTTP/1.1":
			bad <- req.Method + " " + req.URL.Path + " " + req.Proto
		case req.Header.Get("Authorization") != "key-1" || req.Header.Get("Content-Type") != "application/json":
			bad <- "headers " + req.Header.Get("Authorization") + " " + req.Header.Get("Content-Type")
		case req.ContentLength != int64(len(want)) || body != want:
			bad <- "body " + body + " want " + want
		}
		if n == 3 {
			return []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		}
		return []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"ok\":true}\n")
	})
	w, err := newWireClient(s.url(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ctx := context.Background()
	post := func(n, want int) {
		t.Helper()
		if st := w.post(ctx, verifyPath, "key-1", []byte(`{"n":`+strconv.Itoa(n)+`}`)); st != want {
			t.Fatalf("request %d: got status %d, want %d", n, st, want)
		}
		select {
		case b := <-bad:
			t.Fatalf("request %d: the server read %s", n, b)
		default:
		}
	}
	post(1, 200)
	post(2, 200)
	if got := s.accepted.Load(); got != 1 {
		t.Fatalf("after two requests: %d connections, want 1 (kept alive)", got)
	}
	post(3, 503) // the server closes this one
	post(4, 200)
	if got := s.accepted.Load(); got != 2 {
		t.Fatalf("after Connection: close: %d connections, want 2", got)
	}
	c := <-w.idle // age the idle connection past wireIdle
	c.used = time.Now().Add(-wireIdle)
	w.idle <- c
	post(5, 200)
	if got := s.accepted.Load(); got != 3 {
		t.Fatalf("after an idle connection aged out: %d connections, want 3", got)
	}
}

// TestWireClient_NoAnswer: a request the server never answers returns 0
// once its context ends, and the connection is not reused.
func TestWireClient_NoAnswer(t *testing.T) {
	s := startRawServer(t, false, func(n int, _ *http.Request, _ string) []byte {
		if n == 1 {
			return nil
		}
		return []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	w, err := newWireClient(s.url(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, 1)
	go func() { got <- w.post(ctx, sendPath, "k", []byte("{}")) }()
	for s.requests.Load() == 0 { // the server has the request
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case st := <-got:
		if st != 0 {
			t.Fatalf("unanswered request: got status %d, want 0", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("post still waits 10 s after its context ended")
	}
	if st := w.post(context.Background(), sendPath, "k", []byte("{}")); st != 200 {
		t.Fatalf("next request: got %d, want 200", st)
	}
	if got := s.accepted.Load(); got != 2 {
		t.Fatalf("%d connections, want 2 (the unanswered one dropped)", got)
	}
	// Nothing listens: no answer, no panic.
	addr := s.ln.Addr().String()
	s.ln.Close()
	w.close()
	if st := w.post(context.Background(), sendPath, "k", []byte("{}")); st != 0 {
		t.Fatalf("to %s with nothing listening: got %d, want 0", addr, st)
	}
}

// TestNewWireClient: plain http to a host only; anything else is left to
// net/http.
func TestNewWireClient(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:8080":  "127.0.0.1:8080",
		"http://127.0.0.1:8080/": "127.0.0.1:8080",
		"http://localhost":       "localhost:80",
		"http://[::1]:9":         "[::1]:9",
	} {
		w, err := newWireClient(base, 1)
		if err != nil || w.addr != want {
			t.Errorf("%s: got %+v, %v; want addr %s", base, w, err, want)
		}
	}
	for _, base := range []string{"https://127.0.0.1:8443", "http://127.0.0.1:8080/prefix", "http://u:p@127.0.0.1:8080", "http://127.0.0.1:8080?x=1", "127.0.0.1:8080", "http://"} {
		if w, err := newWireClient(base, 1); err == nil {
			t.Errorf("%s: got %+v, want an error", base, w)
		}
	}
}

// TestWireClient_ServerClosedIdle: a server that closes a kept-alive
// connection after its answer, without saying so: the next request finds
// it dead, and is sent again, once, on a new connection.
func TestWireClient_ServerClosedIdle(t *testing.T) {
	s := startRawServer(t, true, func(int, *http.Request, string) []byte {
		return []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	w, err := newWireClient(s.url(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	for i := 1; i <= 3; i++ {
		if st := w.post(context.Background(), sendPath, "k", []byte("{}")); st != 200 {
			t.Fatalf("request %d: got status %d, want 200 (a dead kept-alive connection was not replaced)", i, st)
		}
	}
	if a, r := s.accepted.Load(), s.requests.Load(); a != 3 || r != 3 {
		t.Fatalf("%d connections and %d requests at the server, want 3 and 3 (each request sent once)", a, r)
	}
}

// TestNormalize_Client: Run uses the wire client for a plain http URL
// without a Client, and net/http's otherwise.
func TestNormalize_Client(t *testing.T) {
	mine := &http.Client{}
	for _, tc := range []struct {
		url    string
		client *http.Client
		wire   bool
	}{
		{"http://127.0.0.1:8080", nil, true},
		{"https://127.0.0.1:8443", nil, false},
		{"http://127.0.0.1:8080", mine, false},
	} {
		o := Options{URL: tc.url, ClientID: "c", APIKey: "k", Count: 1, Client: tc.client}
		if err := o.normalize(); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := o.wire != nil; got != tc.wire || (o.wire == nil) != (o.Client != nil) {
			t.Errorf("%s, client %v: wire client %v, net/http client %v; want wire %v", tc.url, tc.client != nil, got, o.Client != nil, tc.wire)
		}
		if tc.client != nil && o.Client != mine {
			t.Errorf("%s: the given client was replaced", tc.url)
		}
	}
}
