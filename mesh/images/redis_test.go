package images

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// resp encodes args as a RESP array of bulk strings, as clients send it.
func resp(args ...string) string {
	s := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		s += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
	}
	return s
}

// dialRedis connects to a redis started by startImage.
func dialRedis(t *testing.T, r *running) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends req on c and reads exactly len(want) bytes of reply.
func roundTrip(t *testing.T, c net.Conn, req, want string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("send %q: %v", req, err)
	}
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil || string(got) != want {
		t.Fatalf("send %q: got %q (%v), want %q", req, got[:n], err, want)
	}
}

// wantClosed fails unless the server closes c with nothing more to say. A
// reset is a close too: Linux resets a connection closed with unread
// input, as after a protocol error.
func wantClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) || len(b) != 0 {
		t.Errorf("after the last reply: read %q, %v; want the connection closed", b, err)
	}
}

func TestRedisCommands(t *testing.T) {
	r := startImage(t, "redis", "redis-server", "--appendonly", "yes") // args are ignored
	if r.asked != ":6379" {
		t.Errorf("redis asked to listen on %q, want :6379", r.asked)
	}
	c := dialRedis(t, r)
	// In order, on one connection: later steps see earlier ones' keys.
	steps := []struct{ name, req, want string }{
		{"ping", resp("PING"), "+PONG\r\n"},
		{"ping lower case", resp("ping"), "+PONG\r\n"},
		{"ping message", resp("PING", "hello"), "$5\r\nhello\r\n"},
		{"inline ping", "PING\r\n", "+PONG\r\n"},
		{"inline with LF only and tabs", "ping \t hi\n", "$2\r\nhi\r\n"},
		{"blank lines and empty arrays are skipped", "\r\n\n*0\r\n*-1\r\nPING\r\n", "+PONG\r\n"},
		{"echo", resp("ECHO", "a b"), "$3\r\na b\r\n"},
		{"echo empty", resp("ECHO", ""), "$0\r\n\r\n"},
		{"get missing", resp("GET", "k"), "$-1\r\n"},
		{"set", resp("SET", "k", "v"), "+OK\r\n"},
		{"get", resp("GET", "k"), "$1\r\nv\r\n"},
		{"set overwrites", "SET k value\r\n", "+OK\r\n"},
		{"inline get", "GET k\r\n", "$5\r\nvalue\r\n"},
		{"binary value", resp("SET", "bin", "a\r\nb\x00"), "+OK\r\n"},
		{"binary value back", resp("GET", "bin"), "$5\r\na\r\nb\x00\r\n"},
		{"incr missing is 1", resp("INCR", "hits"), ":1\r\n"},
		{"incr", resp("INCR", "hits"), ":2\r\n"},
		{"incrby", resp("INCRBY", "hits", "10"), ":12\r\n"},
		{"incrby negative", "INCRBY hits -20\r\n", ":-8\r\n"},
		{"incr stores a string", resp("GET", "hits"), "$2\r\n-8\r\n"},
		{"incr non-integer", resp("INCR", "k"), "-ERR value is not an integer or out of range\r\n"},
		{"incrby non-integer", resp("INCRBY", "hits", "x"), "-ERR value is not an integer or out of range\r\n"},
		{"incrby leading zero", resp("INCRBY", "hits", "07"), "-ERR value is not an integer or out of range\r\n"},
		{"incrby plus sign", resp("INCRBY", "hits", "+7"), "-ERR value is not an integer or out of range\r\n"},
		{"incrby too big", resp("INCRBY", "hits", "9223372036854775808"), "-ERR value is not an integer or out of range\r\n"},
		{"set max", resp("SET", "max", "9223372036854775807"), "+OK\r\n"},
		{"incr overflow", resp("INCR", "max"), "-ERR increment or decrement would overflow\r\n"},
		{"set min", resp("SET", "min", "-9223372036854775808"), "+OK\r\n"},
		{"incrby underflow", resp("INCRBY", "min", "-1"), "-ERR increment or decrement would overflow\r\n"},
		{"value unchanged after an error", resp("GET", "max"), "$19\r\n9223372036854775807\r\n"},
		{"exists counts repeats", resp("EXISTS", "k", "hits", "nope", "k"), ":3\r\n"},
		{"del", resp("DEL", "k", "nope"), ":1\r\n"},
		{"del gone", resp("EXISTS", "k"), ":0\r\n"},
		{"get deleted", resp("GET", "k"), "$-1\r\n"},
		{"command", resp("COMMAND", "DOCS"), "*0\r\n"},
		{"get arity", resp("GET"), "-ERR wrong number of arguments for 'get' command\r\n"},
		{"get arity too many", resp("get", "a", "b"), "-ERR wrong number of arguments for 'get' command\r\n"},
		{"ping arity", resp("PING", "a", "b"), "-ERR wrong number of arguments for 'ping' command\r\n"},
		{"set arity", resp("SET", "k"), "-ERR wrong number of arguments for 'set' command\r\n"},
		{"del arity", "DEL\r\n", "-ERR wrong number of arguments for 'del' command\r\n"},
		{"set options refused", resp("SET", "k", "v", "EX", "10"), "-ERR syntax error: SET options (EX, PX, NX, XX, …) are not supported here\r\n"},
		{"set options change nothing", resp("EXISTS", "k"), ":0\r\n"},
		{"unknown", resp("FOO"), "-ERR unknown command 'FOO', with args beginning with: \r\n"},
		{"unknown with args", "foo a b\r\n", "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"},
		{"unknown with a line break", resp("FOO", "a\r\nb"), "-ERR unknown command 'FOO', with args beginning with: 'a  b' \r\n"},
		{"unknown, long args cut", resp("X", strings.Repeat("a", 100), strings.Repeat("b", 100), "c"),
			"-ERR unknown command 'X', with args beginning with: '" + strings.Repeat("a", 100) + "' '" + strings.Repeat("b", 25) + "' \r\n"},
		{"pipelined", "PING\r\n" + resp("INCR", "p") + "INCR p\r\n" + resp("GET", "p"), "+PONG\r\n:1\r\n:2\r\n$1\r\n2\r\n"},
		{"quit", resp("QUIT"), "+OK\r\n"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { roundTrip(t, c, s.req, s.want) })
	}
	wantClosed(t, c)

	// Another client sees the same keyspace.
	c2 := dialRedis(t, r)
	roundTrip(t, c2, "GET p\r\n", "$1\r\n2\r\n")

	if got, want := r.stdout.String(), "redis: listening on :"+portOf(t, r.url)+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

// TestRedisProtocolErrors checks that a client breaking RESP or a limit
// gets redis's error and is disconnected, and that the server goes on.
func TestRedisProtocolErrors(t *testing.T) {
	r := startImage(t, "redis")
	tests := []struct{ name, req, want string }{
		{"bulk too long", "*1\r\n$524289\r\n", "invalid bulk length"},
		{"bulk length negative", "*1\r\n$-1\r\n", "invalid bulk length"},
		{"bulk length not a number", "*1\r\n$x\r\n", "invalid bulk length"},
		{"too many args", "*1025\r\n", "invalid multibulk length"},
		{"args not a number", "*a\r\n", "invalid multibulk length"},
		{"count line too long", "*" + strings.Repeat("1", 30) + "\r\n", "too big mbulk count string"},
		{"bulk line too long", "*1\r\n$" + strings.Repeat("1", 30) + "\r\n", "too big bulk count string"},
		{"not a bulk", "*1\r\n+PING\r\n", "expected '$', got '+'"},
		{"not a bulk, unprintable", "*1\r\n\x01\r\n", "expected '$', got '?'"},
		{"bulk not ended by CRLF", "*1\r\n$4\r\nPINGxx", "bulk string not followed by CRLF"},
		// The server reads 4 KiB at a time: a line is found too long once a
		// full read passes the limit.
		{"inline too long", strings.Repeat("a", redisMaxInline+4096), "too big inline request"},
		{"command too long", "*3\r\n" + strings.Repeat("$524288\r\n"+strings.Repeat("x", 524288)+"\r\n", 2) + "$1\r\n", "command longer than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRedis(t, r)
			roundTrip(t, c, tt.req, "-ERR Protocol error: "+tt.want+"\r\n")
			wantClosed(t, c)
		})
	}
	roundTrip(t, dialRedis(t, r), "PING\r\n", "+PONG\r\n")
}

// TestReadRedisCommandAllocates checks that a bulk length over the limit
// is refused before anything of that size is allocated.
func TestReadRedisCommandAllocates(t *testing.T) {
	for _, req := range []string{"*1\r\n$2147483647\r\n", "*1\r\n$524289\r\n", "*2147483647\r\n"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		args, err := readRedisCommand(bufio.NewReader(strings.NewReader(req)))
		runtime.ReadMemStats(&after)
		var perr redisProtocolError
		if !errors.As(err, &perr) {
			t.Errorf("%q: got %q, %v; want a protocol error", req, args, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
			t.Errorf("%q: allocated %d bytes, want under 64 KiB", req, got)
		}
	}
}

func TestRedisStoreLimits(t *testing.T) {
	s := newRedisStore()
	for i := range redisMaxKeys {
		if !s.put(strconv.Itoa(i), strconv.Itoa(i)) {
			t.Fatalf("put %d refused, want %d keys accepted", i, redisMaxKeys)
		}
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	s.exec([][]byte{[]byte("SET"), []byte("one-more"), []byte("v")}, w)
	s.exec([][]byte{[]byte("INCR"), []byte("one-more")}, w)
	s.exec([][]byte{[]byte("SET"), []byte("0"), []byte("replaced")}, w)
	s.exec([][]byte{[]byte("INCR"), []byte("1")}, w)
	w.Flush()
	want := "-" + redisOOM + "\r\n-" + redisOOM + "\r\n+OK\r\n:2\r\n"
	if out.String() != want {
		t.Errorf("at %d keys: got %q, want %q", redisMaxKeys, out.String(), want)
	}

	s = newRedisStore()
	big := strings.Repeat("v", redisMaxBulk)
	for i := 0; ; i++ {
		if !s.put(strconv.Itoa(i), big) {
			if s.size > redisMaxBytes || s.size+len(big) <= redisMaxBytes {
				t.Fatalf("refused at %d bytes, want refused only past %d", s.size, redisMaxBytes)
			}
			break
		}
	}
	if !s.put("0", "small") {
		t.Errorf("replacing a value by a smaller one at the limit refused")
	}
}

// TestRedisStops stops a redis with idle clients and one blocked half-way
// through a command, and checks that Run returns nil in time, the clients
// are disconnected and no goroutine is left.
func TestRedisStops(t *testing.T) {
	before := runtime.NumGoroutine()
	r := startImage(t, "redis")
	idle := dialRedis(t, r)
	roundTrip(t, idle, "PING\r\n", "+PONG\r\n")
	half := dialRedis(t, r)
	roundTrip(t, half, "*2\r\n$4\r\nECHO\r\n$3\r\nab", "") // waits for the rest
	if err := r.stop(t); err != nil {
		t.Fatalf("Run(redis) after cancel: got %v, want nil", err)
	}
	wantClosed(t, idle)
	wantClosed(t, half)
	if c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://")); err == nil {
		c.Close()
		t.Errorf("dial after stop succeeded, want connection refused")
	}
	waitGoroutines(t, before)
}

func TestRedisMaxClients(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections")
	}
	r := startImage(t, "redis")
	for i := range redisMaxClients {
		c := dialRedis(t, r)
		if i == redisMaxClients-1 { // the server has seen them all once this one answers
			roundTrip(t, c, "PING\r\n", "+PONG\r\n")
		}
	}
	c := dialRedis(t, r)
	roundTrip(t, c, "", "-ERR max number of clients reached\r\n")
	wantClosed(t, c)
}

// FuzzRedisSession runs a session on arbitrary input and checks that it
// never panics, ends with the input, and answers only well-formed RESP,
// each error on one line.
func FuzzRedisSession(f *testing.F) {
	for _, s := range []string{
		resp("PING"), "PING\r\n", resp("SET", "k", "v") + resp("GET", "k"), "INCR a\r\nINCRBY a -3\r\n",
		resp("DEL", "a", "b"), "*1\r\n$524289\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv", "*-1\r\n", "foo \x00\r\n",
		"*1\r\n$4\r\nQUIT\r\n" + "PING\r\n", "\n\n\r\n", "*1\r\n+x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		s := newRedisStore()
		err := s.session(bufio.NewReader(bytes.NewReader(in)), bufio.NewWriter(&out))
		var perr redisProtocolError
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &perr) {
			t.Fatalf("session ended with %v, want EOF, a protocol error or nil (QUIT)", err)
		}
		if err := checkReplies(out.Bytes()); err != nil {
			t.Fatalf("input %q: replies %q: %v", in, out.Bytes(), err)
		}
	})
}

// checkReplies checks that b is a sequence of RESP replies of the kinds
// the server sends: simple strings, errors, integers, bulk strings (or
// nil) and empty arrays.
func checkReplies(b []byte) error {
	r := bufio.NewReader(bytes.NewReader(b))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil || !strings.HasSuffix(line, "\r\n") || strings.ContainsAny(line[:len(line)-2], "\r\n") {
			return fmt.Errorf("reply line %q is not ended by its only CRLF", line)
		}
		body := line[1 : len(line)-2]
		switch line[0] {
		case '+', '-':
		case ':':
			if _, err := strconv.ParseInt(body, 10, 64); err != nil {
				return fmt.Errorf("integer reply %q", line)
			}
		case '*':
			if body != "0" {
				return fmt.Errorf("array reply %q, want only empty ones", line)
			}
		case '$':
			n, err := strconv.Atoi(body)
			if err != nil || n < -1 || n > redisMaxBulk {
				return fmt.Errorf("bulk reply %q", line)
			}
			if n >= 0 {
				data := make([]byte, n+2)
				if _, err := io.ReadFull(r, data); err != nil || string(data[n:]) != "\r\n" {
					return fmt.Errorf("bulk reply of %d bytes not followed by CRLF", n)
				}
			}
		default:
			return fmt.Errorf("reply %q of unknown type", line)
		}
	}
}

// FuzzReadRedisCommand checks the parser's limits on any input, and that
// any command it accepts reads back the same once encoded as clients do.
func FuzzReadRedisCommand(f *testing.F) {
	for _, s := range []string{resp("SET", "k", "a\r\nb"), "GET k\r\n", "*2\r\n$1\r\na\r\n", "*1\r\n$-5\r\n", "$1\r\n", "*0\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		args, err := readRedisCommand(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		total := 0
		for _, a := range args {
			total += len(a)
			if len(a) > redisMaxBulk {
				t.Fatalf("argument of %d bytes accepted, limit %d", len(a), redisMaxBulk)
			}
		}
		if len(args) > redisMaxArgs || total > redisMaxCommand {
			t.Fatalf("%d arguments of %d bytes accepted, limits %d and %d", len(args), total, redisMaxArgs, redisMaxCommand)
		}
		if len(args) == 0 {
			return
		}
		strs := make([]string, len(args))
		for i, a := range args {
			strs[i] = string(a)
		}
		again, err := readRedisCommand(bufio.NewReader(strings.NewReader(resp(strs...))))
		if err != nil || len(again) != len(args) {
			t.Fatalf("%q re-encoded: got %q, %v", args, again, err)
		}
		for i := range args {
			if !bytes.Equal(again[i], args[i]) {
				t.Fatalf("%q re-encoded: got %q", args, again)
			}
		}
	})
}
