package images

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the redis stand-in. Every size is checked before anything of
// that size is allocated, so a client can make a task hold at most
// redisMaxClients × redisMaxCommand of requests and redisMaxBytes of data.
const (
	redisMaxBulk    = 512 << 10 // one argument ("proto-max-bulk-len", 512 MB in redis)
	redisMaxArgs    = 1024      // arguments of one command
	redisMaxCommand = 1 << 20   // all arguments of one command, together
	redisMaxInline  = 64 << 10  // an inline command's line, as in redis
	redisMaxKeys    = 100_000
	redisMaxBytes   = 64 << 20 // keys and values stored, together
	redisMaxClients = 1000     // connections at once ("maxclients", 10000 in redis)
	// redisMaxHeader bounds a "*N" or "$N" line: a sign and 19 digits.
	redisMaxHeader = 20
)

// redisProtocolError is a client's breach of RESP. As redis does, the
// server answers "-ERR Protocol error: …" and closes the connection.
type redisProtocolError string

func (e redisProtocolError) Error() string { return "Protocol error: " + string(e) }

// redisOOM is redis's refusal when maxmemory is reached, which is what
// running into redisMaxKeys or redisMaxBytes is.
const redisOOM = "OOM command not allowed when used memory > 'maxmemory'."

// serveRedis listens on addr and serves RESP, one goroutine per
// connection, until ctx is done; then it closes the listener and every
// connection and returns once their goroutines have.
func serveRedis(ctx context.Context, addr string, stdout, stderr io.Writer, opts runOptions) error {
	if ctx.Err() != nil {
		return nil // stopped before it started
	}
	ln, err := opts.listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("redis: listen on %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "redis: listening on %s\n", listenAddr(addr, ln.Addr()))

	store := newRedisStore()
	var (
		mu    sync.Mutex // guards conns
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	closeAll := func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer func() {
		stop()
		closeAll()
		wg.Wait()
	}()

	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http's server does, rather than end the task.
			var temp interface{ Temporary() bool }
			if !errors.As(err, &temp) || !temp.Temporary() {
				return fmt.Errorf("redis: serve on %s: %w", addr, err)
			}
			fmt.Fprintf(stderr, "redis: accept: %v; retrying in %v\n", err, backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		mu.Lock()
		// Under mu, a context not yet done means closeAll has yet to run
		// and will see this connection.
		if ctx.Err() != nil || len(conns) >= redisMaxClients {
			mu.Unlock()
			if ctx.Err() == nil {
				_, _ = io.WriteString(c, "-ERR max number of clients reached\r\n")
			}
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client's protocol error is the client's business: redis
			// logs it only at verbose level, we not at all.
			_ = store.session(bufio.NewReader(c), bufio.NewWriter(c))
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// redisStore is the server's keyspace: strings only.
type redisStore struct {
	mu   sync.Mutex
	data map[string]string
	size int // bytes of keys and values in data
}

func newRedisStore() *redisStore { return &redisStore{data: map[string]string{}} }

// session serves one client: it reads commands from r and writes their
// replies to w until the client quits or breaks the protocol, or r fails.
// Replies to pipelined commands are sent together, once no command is
// left buffered.
func (s *redisStore) session(r *bufio.Reader, w *bufio.Writer) error {
	for {
		args, err := readRedisCommand(r)
		var perr redisProtocolError
		if errors.As(err, &perr) {
			writeRedisError(w, "ERR "+perr.Error())
			_ = w.Flush() // the connection closes anyway
			return err
		}
		if err != nil {
			return err // io.EOF: the client left
		}
		if len(args) > 0 && s.exec(args, w) {
			return w.Flush()
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// readRedisCommand reads one command: a RESP array of bulk strings
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or an inline one ("GET k\r\n", as
// telnet sends). It returns no arguments for an empty command (a blank
// line, "*0", "*-1"), which redis skips. Limits are checked before
// anything is allocated; a breach is a [redisProtocolError].
func readRedisCommand(r *bufio.Reader) ([][]byte, error) {
	line, err := readRedisLine(r, redisMaxInline, "too big inline request")
	if err != nil {
		return nil, err
	}
	if len(line) == 0 || line[0] != '*' {
		return splitInline(line)
	}
	if len(line) > redisMaxHeader {
		return nil, redisProtocolError("too big mbulk count string")
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n > redisMaxArgs {
		return nil, redisProtocolError("invalid multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	args := make([][]byte, 0, n)
	total := 0
	for range n {
		line, err := readRedisLine(r, redisMaxHeader, "too big bulk count string")
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			c := byte('?')
			if len(line) > 0 && line[0] >= ' ' && line[0] < 0x7f {
				c = line[0]
			}
			return nil, redisProtocolError(fmt.Sprintf("expected '$', got '%c'", c))
		}
		l, err := strconv.Atoi(string(line[1:]))
		if err != nil || l < 0 || l > redisMaxBulk {
			return nil, redisProtocolError("invalid bulk length")
		}
		if total += l; total > redisMaxCommand {
			return nil, redisProtocolError(fmt.Sprintf("command longer than %d bytes", redisMaxCommand))
		}
		buf := make([]byte, l+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if buf[l] != '\r' || buf[l+1] != '\n' {
			return nil, redisProtocolError("bulk string not followed by CRLF")
		}
		args = append(args, buf[:l:l])
	}
	return args, nil
}

// readRedisLine reads a line ended by "\n" or "\r\n" and returns it
// without the ending; a line longer than max is a [redisProtocolError]
// saying tooBig, found before more than max+2 bytes are kept.
func readRedisLine(r *bufio.Reader, max int, tooBig string) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max+2 {
			return nil, redisProtocolError(tooBig)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// splitInline splits an inline command at spaces and tabs. Unlike redis,
// it gives quotes no meaning: an inline value cannot hold a space.
func splitInline(line []byte) ([][]byte, error) {
	args := bytes.Fields(line)
	if len(args) > redisMaxArgs {
		return nil, redisProtocolError("invalid multibulk length")
	}
	return args, nil
}

// redisArity is each command's number of arguments, counting its name,
// as redis's command table has it: -N means at least N.
var redisArity = map[string]int{
	"ping": -1, "echo": 2, "get": 2, "set": -3, "incr": 2, "incrby": 3,
	"del": -2, "exists": -2, "command": -1, "quit": -1,
}

// exec runs one command and writes its reply; it reports whether the
// client asked to quit.
func (s *redisStore) exec(args [][]byte, w *bufio.Writer) (quit bool) {
	name := ""
	if len(args[0]) <= 16 { // longer than any command we know
		name = strings.ToLower(string(args[0]))
	}
	arity, ok := redisArity[name]
	switch {
	case !ok:
		writeRedisError(w, unknownRedisCommand(args))
		return false
	case arity > 0 && len(args) != arity, arity < 0 && len(args) < -arity, name == "ping" && len(args) > 2:
		writeRedisError(w, fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
		return false
	}

	switch name {
	case "ping":
		if len(args) == 2 {
			writeRedisBulk(w, args[1])
		} else {
			w.WriteString("+PONG\r\n")
		}
	case "echo":
		writeRedisBulk(w, args[1])
	case "command":
		w.WriteString("*0\r\n") // enough for redis-cli, which only asks for hints
	case "quit":
		w.WriteString("+OK\r\n")
		return true
	case "get":
		s.mu.Lock()
		v, ok := s.data[string(args[1])]
		s.mu.Unlock()
		if !ok {
			w.WriteString("$-1\r\n")
		} else {
			writeRedisBulk(w, []byte(v))
		}
	case "set":
		if len(args) > 3 {
			writeRedisError(w, "ERR syntax error: SET options (EX, PX, NX, XX, …) are not supported here")
			return false
		}
		s.mu.Lock()
		ok := s.put(string(args[1]), string(args[2]))
		s.mu.Unlock()
		if ok {
			w.WriteString("+OK\r\n")
		} else {
			writeRedisError(w, redisOOM)
		}
	case "incr", "incrby":
		by := int64(1)
		if name == "incrby" {
			var ok bool
			if by, ok = parseRedisInt(args[2]); !ok {
				writeRedisError(w, "ERR value is not an integer or out of range")
				return false
			}
		}
		s.incr(w, string(args[1]), by)
	case "del", "exists":
		n := 0
		s.mu.Lock()
		for _, k := range args[1:] {
			v, ok := s.data[string(k)]
			if !ok {
				continue
			}
			n++
			if name == "del" {
				delete(s.data, string(k))
				s.size -= len(k) + len(v)
			}
		}
		s.mu.Unlock()
		fmt.Fprintf(w, ":%d\r\n", n)
	}
	return false
}

// incr adds by to key's integer value, 0 when key is missing, and writes
// the result, or redis's error for a value that is no integer or would
// overflow.
func (s *redisStore) incr(w *bufio.Writer, key string, by int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	if v, ok := s.data[key]; ok {
		if n, ok = parseRedisInt([]byte(v)); !ok {
			writeRedisError(w, "ERR value is not an integer or out of range")
			return
		}
	}
	if by > 0 && n > (1<<63-1)-by || by < 0 && n < -(1<<63)-by {
		writeRedisError(w, "ERR increment or decrement would overflow")
		return
	}
	n += by
	if !s.put(key, strconv.FormatInt(n, 10)) {
		writeRedisError(w, redisOOM)
		return
	}
	fmt.Fprintf(w, ":%d\r\n", n)
}

// put stores key = v unless that would pass redisMaxKeys or
// redisMaxBytes. The caller holds s.mu.
func (s *redisStore) put(key, v string) bool {
	old, exists := s.data[key]
	size := s.size + len(v)
	if exists {
		size -= len(old)
	} else {
		size += len(key)
	}
	if !exists && len(s.data) >= redisMaxKeys || size > redisMaxBytes {
		return false
	}
	s.data[key] = v
	s.size = size
	return true
}

// parseRedisInt parses a 64-bit integer as redis does: decimal, no sign
// but "-", no leading zero, no space.
func parseRedisInt(b []byte) (int64, bool) {
	if len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == string(b)
}

// unknownRedisCommand is redis's error for a command it does not have,
// e.g. "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ":
// the name cut at 128 bytes, then quoted arguments until 128 bytes of
// them are printed; line breaks become spaces, as redis makes them.
func unknownRedisCommand(args [][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ERR unknown command '%s', with args beginning with: ", cutBytes(args[0], 128))
	start := b.Len()
	for _, a := range args[1:] {
		left := 128 - (b.Len() - start)
		if left <= 0 {
			break
		}
		fmt.Fprintf(&b, "'%s' ", cutBytes(a, left))
	}
	return b.String()
}

func cutBytes(b []byte, n int) []byte { return b[:min(len(b), n)] }

// writeRedisError writes msg as a RESP error, with line breaks replaced
// so that it stays one line.
func writeRedisError(w *bufio.Writer, msg string) {
	w.WriteString("-" + strings.NewReplacer("\r", " ", "\n", " ").Replace(msg) + "\r\n")
}

func writeRedisBulk(w *bufio.Writer, b []byte) {
	fmt.Fprintf(w, "$%d\r\n", len(b))
	w.Write(b)
	w.WriteString("\r\n")
}
