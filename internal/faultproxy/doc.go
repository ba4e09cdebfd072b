// Package faultproxy is an HTTP reverse proxy for tests that puts faults
// between an S3 client and a real S3 server (MinIO): server errors with
// S3-style XML bodies, slow answers, connections dropped before or in the
// middle of a response, and bodies cut short of their Content-Length.
//
// In a test:
//
//	p, err := faultproxy.Start(faultproxy.Options{Upstream: srv.Endpoint, Rate: 0.15, Seed: 42})
//	defer p.Close()
//	// point the client at p.URL instead of srv.Endpoint
//	...
//	st := p.Stats()     // what was injected, per kind
//
// What it promises:
//   - The Host header the client sent reaches the upstream unchanged, so
//     AWS Signature V4 (which signs it) stays valid through the proxy.
//   - A fraction Rate of requests, chosen by a random generator seeded with
//     Seed, gets one fault; the rest are passed through untouched. With
//     concurrent clients the order in which requests draw from the
//     generator varies, so the seed fixes the sequence of decisions, not
//     which request gets which.
//   - A fault that needs a response body (a cut or truncated body) is only
//     applied to a response that has one; otherwise another kind is drawn.
//     Stats count what was really done, never what was only planned.
//   - Server errors (500, 503) and drops before forwarding never reach the
//     upstream; a drop after forwarding, a cut or a truncated body reach it
//     (so a PUT may have been stored although the client saw a failure:
//     the ambiguous case S3 clients must handle).
//
// It listens on 127.0.0.1 only and logs nothing; it is for tests, not
// production.
package faultproxy
