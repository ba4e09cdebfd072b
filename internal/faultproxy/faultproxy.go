package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is one kind of fault.
type Kind int

// The kinds of fault. The names are what Kind.String returns.
const (
	// Error500 answers 500 InternalError with an S3 XML error body, without
	// forwarding the request.
	Error500 Kind = iota
	// Error503 answers 503 SlowDown with an S3 XML error body, without
	// forwarding the request.
	Error503
	// Slow forwards the request after a delay of SlowDelay/2 to SlowDelay,
	// and answers normally.
	Slow
	// DropBeforeForward closes the connection (with a reset) without
	// forwarding the request or answering.
	DropBeforeForward
	// DropAfterForward forwards the request, then closes the connection
	// (with a reset) without answering: the upstream did the work, the
	// client does not know.
	DropAfterForward
	// CutBody forwards, sends the status line, the headers and part of the
	// body, then resets the connection.
	CutBody
	// TruncateBody forwards and answers with the upstream's Content-Length
	// but sends fewer bytes of body, then closes the connection normally.
	TruncateBody

	numKinds
)

// Kinds lists every kind, in order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

var kindNames = [numKinds]string{"500", "503", "slow", "drop-before-forward", "drop-after-forward", "cut-body", "truncate-body"}

func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// needsBody reports whether the fault can only be applied to a response
// with a body of at least two bytes.
func (k Kind) needsBody() bool { return k == CutBody || k == TruncateBody }

// Options configure a Proxy.
type Options struct {
	// Upstream is the server's base URL, e.g. "http://127.0.0.1:9000".
	Upstream string
	// Rate is the fraction of requests that get a fault, 0 to 1.
	Rate float64
	// Seed seeds the generator that picks faulty requests and kinds.
	Seed uint64
	// Kinds are the faults to draw from, with equal weight. Empty: all.
	Kinds []Kind
	// SlowDelay is the longest delay of a Slow fault. Default 1s.
	SlowDelay time.Duration
	// Filter, when set, limits faults to requests it accepts; the others
	// are always passed through (and do not draw from the generator).
	Filter func(*http.Request) bool
}

// Stats is what a Proxy has done so far.
type Stats struct {
	Requests int64          // requests received
	Injected map[Kind]int64 // faults applied, per kind
}

// Total is the number of faults applied.
func (s Stats) Total() int64 {
	var n int64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d faults", s.Requests, s.Total())
	for _, k := range Kinds() {
		fmt.Fprintf(&b, ", %s %d", k, s.Injected[k])
	}
	return b.String()
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's base URL ("http://127.0.0.1:PORT"): give it to the
	// client as its endpoint.
	URL string

	opts      Options
	upstream  *url.URL
	transport *http.Transport
	server    *http.Server
	ln        net.Listener
	done      chan struct{}

	mu   sync.Mutex
	rng  *rand.Rand
	rate float64

	requests atomic.Int64
	injected [numKinds]atomic.Int64
}

// Start starts a proxy on a free port of 127.0.0.1.
func Start(opts Options) (*Proxy, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an http(s) base URL", opts.Upstream)
	}
	if opts.Rate < 0 || opts.Rate > 1 {
		return nil, fmt.Errorf("faultproxy: rate %v is not between 0 and 1", opts.Rate)
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = Kinds()
	}
	for _, k := range opts.Kinds {
		if k < 0 || k >= numKinds {
			return nil, fmt.Errorf("faultproxy: unknown fault kind %d", int(k))
		}
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		opts:     opts,
		upstream: u,
		transport: &http.Transport{
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     30 * time.Second,
		},
		ln:   ln,
		done: make(chan struct{}),
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		rate: opts.Rate,
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.server.Close()
	<-p.done
	p.transport.CloseIdleConnections()
	return err
}

// SetRate changes the fault rate from now on (0 passes everything through).
func (p *Proxy) SetRate(rate float64) {
	p.mu.Lock()
	p.rate = min(max(rate, 0), 1)
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	s := Stats{Requests: p.requests.Load(), Injected: map[Kind]int64{}}
	for k := range numKinds {
		s.Injected[k] = p.injected[k].Load()
	}
	return s
}

// decision is what happens to one request.
type decision struct {
	fault bool
	kind  Kind
	// frac places a cut or truncation within the body, and a slow delay
	// within [SlowDelay/2, SlowDelay]: 0 to 1.
	frac float64
	// alt is the kind used instead of a body fault when the response has
	// no body, drawn among the others.
	alt Kind
}

func (p *Proxy) decide(r *http.Request) decision {
	if p.opts.Filter != nil && !p.opts.Filter(r) {
		return decision{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.rate {
		return decision{}
	}
	d := decision{fault: true, kind: p.opts.Kinds[p.rng.IntN(len(p.opts.Kinds))], frac: p.rng.Float64()}
	var others []Kind
	for _, k := range p.opts.Kinds {
		if !k.needsBody() {
			others = append(others, k)
		}
	}
	if len(others) == 0 {
		others = []Kind{DropAfterForward}
	}
	d.alt = others[p.rng.IntN(len(others))]
	return d
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	d := p.decide(r)
	if !d.fault {
		p.pass(w, r)
		return
	}
	p.inject(w, r, d, d.kind)
}

func (p *Proxy) inject(w http.ResponseWriter, r *http.Request, d decision, kind Kind) {
	switch kind {
	case Error500, Error503:
		p.injectError(w, r, kind)
	case Slow:
		p.count(kind)
		delay := p.opts.SlowDelay/2 + time.Duration(d.frac*float64(p.opts.SlowDelay/2))
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		p.pass(w, r)
	case DropBeforeForward:
		p.count(kind)
		resetConn(w)
	case DropAfterForward:
		resp, err := p.forward(r)
		if err != nil {
			badGateway(w, err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		p.count(kind)
		resetConn(w)
	case CutBody, TruncateBody:
		resp, err := p.forward(r)
		if err != nil {
			badGateway(w, err)
			return
		}
		defer resp.Body.Close()
		if r.Method == http.MethodHead || resp.ContentLength < 2 {
			// No body to cut: apply another kind. Upstream already did the
			// work, so a pre-forward kind would be a lie; answer its way
			// with this response.
			p.injectAfter(w, r, resp, d.alt)
			return
		}
		keep := 1 + int64(d.frac*float64(resp.ContentLength-1))
		p.writeRawPartial(w, resp, keep, kind)
	}
}

// injectAfter applies kind to a request already forwarded, whose
// response is resp.
func (p *Proxy) injectAfter(w http.ResponseWriter, r *http.Request, resp *http.Response, kind Kind) {
	switch kind {
	case Error500, Error503:
		p.injectError(w, r, kind)
	case Slow:
		p.count(kind)
		time.Sleep(p.opts.SlowDelay / 2)
		copyResponse(w, resp)
	default: // the drops: the client gets no answer
		_, _ = io.Copy(io.Discard, resp.Body)
		p.count(DropAfterForward)
		resetConn(w)
	}
}

// injectError answers with an S3 error of kind Error500 or Error503.
func (p *Proxy) injectError(w http.ResponseWriter, r *http.Request, kind Kind) {
	p.count(kind)
	if kind == Error503 {
		w.Header().Set("Retry-After", "1")
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown",
			"Please reduce your request rate. (injected by faultproxy)")
		return
	}
	writeS3Error(w, r, http.StatusInternalServerError, "InternalError",
		"We encountered an internal error, please try again. (injected by faultproxy)")
}

func (p *Proxy) count(k Kind) { p.injected[k].Add(1) }

// pass forwards r and copies the answer back.
func (p *Proxy) pass(w http.ResponseWriter, r *http.Request) {
	resp, err := p.forward(r)
	if err != nil {
		badGateway(w, err)
		return
	}
	defer resp.Body.Close()
	copyResponse(w, resp)
}

// hopHeaders are per-connection headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward sends r to the upstream with its Host header unchanged.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	out.Host = r.Host // signed by the client: must arrive as sent
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return p.transport.RoundTrip(out)
}

func copyResponse(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// writeRawPartial takes over the connection and writes resp's status line,
// headers (with its full Content-Length) and only keep bytes of its body;
// then it resets (CutBody) or closes (TruncateBody) the connection.
func (p *Proxy) writeRawPartial(w http.ResponseWriter, resp *http.Response, keep int64, kind Kind) {
	conn, bw, err := hijack(w)
	if err != nil {
		badGateway(w, err)
		return
	}
	defer conn.Close()
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	h.Set("Connection", "close")
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	_ = h.Write(bw)
	_, _ = bw.WriteString("\r\n")
	if _, err := io.CopyN(bw, resp.Body, keep); err != nil {
		return // upstream failed: not what was meant to be injected
	}
	if err := bw.Flush(); err != nil {
		return
	}
	p.count(kind)
	if kind == CutBody {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends a reset
		}
	}
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.Writer, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("faultproxy: connection cannot be taken over")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return conn, rw.Writer, nil
}

// resetConn closes the client's connection with a TCP reset and no answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := hijack(w)
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeS3Error answers with an S3 error document, as S3 and MinIO do.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, msg, xmlEscape(r.URL.Path))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amz-Request-Id", "faultproxy")
	// The client may still be sending a request body we will not read.
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

func badGateway(w http.ResponseWriter, err error) {
	http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
}
