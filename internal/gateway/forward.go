package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/valyala/fasthttp"
)

// maxBufferedBody is the largest response body of known length that is read
// whole before it is answered; longer ones, and those of unknown length
// (chunked, server-sent events), stream through as they arrive.
const maxBufferedBody = 64 << 10

// forward proxies the request to an instance of the exchange's backend and
// answers with the instance's response. It returns true when the answer
// goes on after it returns (see handle).
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, ex *exchange) (later bool) {
	uc, err := g.roundTrip(ctx, ex)
	if err != nil {
		g.proxyError(ctx, err)
		return false
	}
	resp := &ex.resp
	if ex.upgrade && resp.StatusCode() == http.StatusSwitchingProtocols {
		g.relayUpgrade(ctx, ex, uc)
		return true
	}
	out := &ctx.Response
	copyResponseHeader(&out.Header, &resp.Header)
	out.Header.Set("X-Request-Id", ex.requestID)
	if ex.head || !hasBody(resp.StatusCode()) {
		if cl := resp.Header.ContentLength(); ex.head && cl >= 0 {
			out.Header.SetContentLength(cl)
		}
		g.done(uc, resp)
		return false
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= maxBufferedBody && !isEventStream(resp.Header.ContentType()) {
		if err := resp.ReadBody(uc.br, 0); err != nil {
			uc.conn.Close()
			out.Reset()
			g.metrics.upstreamErrors.WithLabelValues(ex.route.Prefix, ex.upstream.name, failureKind(err)).Inc()
			writeDetail(ctx, http.StatusBadGateway, ex.backend.Service+" broke off its response")
			return false
		}
		out.SetBody(resp.Body())
		g.done(uc, resp)
		return false
	}
	// Stream: fasthttp writes the body as it reads it from the stream,
	// chunked and flushed chunk by chunk when its length is unknown, then
	// the trailers the stream copied in.
	resp.StreamBody = true
	if err := resp.ReadBody(uc.br, 0); err != nil {
		uc.conn.Close()
		out.Reset()
		writeDetail(ctx, http.StatusBadGateway, ex.backend.Service+" broke off its response")
		return false
	}
	for _, key := range resp.Header.PeekTrailerKeys() {
		out.Header.AddTrailerBytes(key)
	}
	if cl < 0 {
		cl = -1 // chunked towards the client, also for a body that ends with the connection
	}
	ex.status = resp.StatusCode()
	ex.stream = bodyStream{g: g, ex: ex, uc: uc, out: out}
	out.SetBodyStream(&ex.stream, cl)
	return true
}

// done returns the connection of a response read to its end to the pool,
// unless the instance asked to close it.
func (g *Gateway) done(uc *upConn, resp *fasthttp.Response) {
	if resp.Header.ConnectionClose() {
		uc.conn.Close()
		return
	}
	g.upstreams.put(uc)
}

// hasBody reports whether a response with this status carries a body.
func hasBody(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// bodyStream relays a streamed response body from the instance's
// connection to the client; its end (Close, called by the server once the
// response is written or has failed) records the exchange.
type bodyStream struct {
	g   *Gateway
	ex  *exchange
	uc  *upConn
	out *fasthttp.Response
	eof bool
}

func (s *bodyStream) Read(p []byte) (int, error) {
	n, err := s.ex.resp.BodyStream().Read(p)
	s.ex.bytes += int64(n)
	switch err {
	case nil:
	case io.EOF:
		s.eof = true
		// The stream read the trailers, if any, into the instance's header.
		for _, key := range s.ex.resp.Header.PeekTrailerKeys() {
			if v := s.ex.resp.Header.PeekTrailer(string(key)); v != nil {
				s.out.Header.SetBytesKV(key, v)
			}
		}
	default:
		s.g.log.Warn("reading upstream response body", "upstream", s.ex.upstream.name, "err", err)
	}
	return n, err
}

func (s *bodyStream) Close() error {
	ex, uc := s.ex, s.uc
	ex.resp.CloseBodyStream()
	if s.eof && ex.resp.Header.ContentLength() != -2 {
		s.g.done(uc, &ex.resp)
	} else {
		// A body cut short leaves the connection mid-response, and one
		// that ends with the connection has nothing more.
		uc.conn.Close()
	}
	s.g.finish(ex)
	return nil
}

func isEventStream(contentType []byte) bool {
	mediaType, _, _ := bytes.Cut(contentType, []byte(";"))
	return bytes.EqualFold(bytes.TrimSpace(mediaType), []byte("text/event-stream"))
}

// hopByHop reports headers that concern one connection only (RFC 7230
// section 6.1, plus the older ones ReverseProxy removes), by canonical name.
func hopByHop(key string) bool {
	switch key {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// containsToken reports whether a comma-separated header value lists token
// (case-insensitively).
func containsToken(value []byte, token string) bool {
	for len(value) > 0 {
		var field []byte
		field, value, _ = bytes.Cut(value, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(field), []byte(token)) {
			return true
		}
	}
	return false
}

// writeRequest writes the request to send upstream: the client's, minus
// hop-by-hop headers, with the client's X-Forwarded-For chain extended,
// X-Forwarded-Host and -Proto set, the request ID, and the body read by the
// server (so that a retry can send it again). A protocol upgrade keeps its
// Upgrade header and says so in Connection.
func writeRequest(w *bufio.Writer, ctx *fasthttp.RequestCtx, ex *exchange) error {
	in := &ctx.Request.Header
	w.Write(in.Method())
	w.WriteByte(' ')
	w.Write(ctx.URI().RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(in.Host())
	w.WriteString("\r\n")
	connection := in.Peek("Connection")
	var te bool
	for k, v := range in.All() {
		switch string(k) {
		case "Host", "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id":
			continue
		case "Te":
			te = te || containsToken(v, "trailers")
			continue
		}
		if hopByHop(string(k)) || containsToken(connection, string(k)) {
			continue
		}
		writeHeaderLine(w, k, v)
	}
	if ex.upgrade {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.Write(in.Peek("Upgrade"))
		w.WriteString("\r\n")
	}
	if te {
		w.WriteString("Te: trailers\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	for _, prior := range in.PeekAll("X-Forwarded-For") {
		w.Write(prior)
		w.WriteString(", ")
	}
	w.WriteString(ex.client)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(in.Host())
	if ctx.IsTLS() {
		w.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
	} else {
		w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
	}
	w.WriteString(ex.requestID)
	body := ctx.Request.Body()
	if len(body) > 0 || sendsBody(ex.method) {
		w.WriteString("\r\nContent-Length: ")
		var digits [20]byte
		w.Write(strconv.AppendInt(digits[:0], int64(len(body)), 10))
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	return w.Flush()
}

// sendsBody reports methods whose requests carry a body, even an empty one.
func sendsBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

func writeHeaderLine(w *bufio.Writer, k, v []byte) {
	w.Write(k)
	w.WriteString(": ")
	w.Write(v)
	w.WriteString("\r\n")
}

// copyResponseHeader sets the client's response header from the
// instance's: the status and every header but hop-by-hop ones, Date (the
// server sets its own) and X-Request-ID (the gateway's own is set).
func copyResponseHeader(dst, src *fasthttp.ResponseHeader) {
	dst.SetStatusCode(src.StatusCode())
	connection := src.Peek("Connection")
	for k, v := range src.All() {
		switch string(k) {
		case "Content-Length", "Date", "X-Request-Id":
			continue
		}
		if hopByHop(string(k)) || containsToken(connection, string(k)) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
}
