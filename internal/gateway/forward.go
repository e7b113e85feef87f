package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
)

// forward proxies a request that is not a protocol upgrade. It does what
// httputil.ReverseProxy with the gateway's Rewrite did, with less work per
// request: the outbound header shares the inbound values instead of cloning
// them, hop-by-hop headers are skipped by their canonical names instead of
// deleted one by one, and no extra cancel context is made.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, ex *exchange) {
	// The outbound request and the trace live in the exchange: one
	// allocation for all three.
	out := &ex.out
	*out = http.Request{
		Method:     r.Method,
		URL:        r.URL, // attempt copies it with the instance's address
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     outboundHeader(r, ex.idValue[:]),
		Host:       r.Host,
	}
	// Interim responses (103 Early Hints, 100 Continue) are passed on like
	// ReverseProxy does; the transport drops them otherwise.
	trace := &ex.trace
	*trace = httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			h := w.Header()
			copyHeader(h, http.Header(header))
			w.WriteHeader(code)
			// WriteHeader does not clear the header after a 1xx; the final
			// response must not repeat it, but keeps its request ID.
			clear(h)
			h["X-Request-Id"] = ex.idValue[:]
			return nil
		},
	}
	ctx := httptrace.WithClientTrace(r.Context(), trace)
	resp, err := g.roundTrip(ctx, out, ex)
	if err != nil {
		g.proxyError(w, r, err)
		return
	}
	removeHopByHopHeaders(resp.Header)
	// The response's X-Request-ID is the gateway's own, already set.
	delete(resp.Header, "X-Request-Id")
	header := w.Header()
	copyHeader(header, resp.Header)
	announcedTrailers := len(resp.Trailer)
	if announcedTrailers > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		header.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := g.copyBody(w, resp); err != nil {
		resp.Body.Close()
		if r.Context().Value(http.ServerContextKey) == nil {
			// Not under an http.Server (a handler called directly), which
			// could not abort the connection.
			return
		}
		// The status is sent; aborting the connection is the only way to
		// tell the client the body is incomplete.
		panic(http.ErrAbortHandler)
	}
	resp.Body.Close()
	if len(resp.Trailer) == 0 {
		return
	}
	http.NewResponseController(w).Flush()
	if len(resp.Trailer) == announcedTrailers {
		copyHeader(header, resp.Trailer)
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			header.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody relays the response body, flushing after every write when the
// response streams (unknown length or server-sent events), as ReverseProxy
// does.
func (g *Gateway) copyBody(w http.ResponseWriter, resp *http.Response) error {
	streaming := resp.ContentLength == -1 || isEventStream(resp.Header["Content-Type"])
	bufp := g.buffers.Get().(*[]byte)
	defer g.buffers.Put(bufp)
	buf := *bufp
	for {
		n, readErr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if streaming {
				http.NewResponseController(w).Flush()
			}
		}
		if readErr == io.EOF {
			return nil
		}
		if readErr != nil {
			if !errors.Is(readErr, context.Canceled) {
				g.log.Warn("reading upstream response body", "err", readErr)
			}
			return readErr
		}
	}
}

func isEventStream(contentType []string) bool {
	if len(contentType) == 0 {
		return false
	}
	mediaType, _, _ := strings.Cut(contentType[0], ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream")
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

// connectionListed returns the canonical names of the headers a Connection
// header declares hop-by-hop.
func connectionListed(connection []string) []string {
	var names []string
	for _, v := range connection {
		for field := range strings.SplitSeq(v, ",") {
			if field = textproto.TrimString(field); field != "" {
				names = append(names, textproto.CanonicalMIMEHeaderKey(field))
			}
		}
	}
	return names
}

func removeHopByHopHeaders(h http.Header) {
	for _, name := range connectionListed(h["Connection"]) {
		delete(h, name)
	}
	for k := range h {
		if hopByHop(k) {
			delete(h, k)
		}
	}
}

// outboundHeader is the header sent upstream: the client's minus hop-by-hop
// headers, with the client's X-Forwarded-For chain extended, X-Forwarded-Host
// and -Proto set, and the request ID. Values are shared with the inbound
// header, which nothing modifies while the request is forwarded.
func outboundHeader(r *http.Request, requestID []string) http.Header {
	in := r.Header
	var listed []string
	if connection := in["Connection"]; len(connection) > 0 {
		listed = connectionListed(connection)
	}
	h := make(http.Header, len(in)+4)
	for k, vv := range in {
		switch k {
		case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id":
			continue
		}
		if hopByHop(k) || slices.Contains(listed, k) {
			continue
		}
		h[k] = vv
	}
	// One backing array for the values the gateway sets.
	values := make([]string, 0, 4)
	add := func(key, value string) {
		values = append(values, value)
		h[key] = values[len(values)-1 : len(values) : len(values)]
	}
	if containsToken(in["Te"], "trailers") {
		add("Te", "trailers")
	}
	if client, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			client = strings.Join(prior, ", ") + ", " + client
		}
		add("X-Forwarded-For", client)
	}
	add("X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		add("X-Forwarded-Proto", "http")
	} else {
		add("X-Forwarded-Proto", "https")
	}
	h["X-Request-Id"] = requestID
	if _, ok := in["User-Agent"]; !ok {
		// An empty User-Agent keeps the transport from sending Go's own.
		add("User-Agent", "")
	}
	return h
}

// containsToken reports whether a comma-separated header lists token
// (case-insensitively).
func containsToken(values []string, token string) bool {
	for _, v := range values {
		for field := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(field), token) {
				return true
			}
		}
	}
	return false
}

// copyHeader adds src's values to dst. Keys of a parsed header are already
// canonical, so values are appended without canonicalising again, and taken
// over as they are when dst has none.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if existing, ok := dst[k]; ok {
			// Full slice expression: never append into a shared array.
			dst[k] = append(existing[:len(existing):len(existing)], vv...)
		} else {
			dst[k] = vv
		}
	}
}
