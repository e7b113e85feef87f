package gateway

import (
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// relayUpgrade answers a protocol upgrade (WebSocket) the instance accepted:
// it takes the client's connection over from the server, passes the
// instance's 101 on, and relays bytes both ways until either side ends.
// The route's timeout covered the handshake only.
func (g *Gateway) relayUpgrade(ctx *fasthttp.RequestCtx, ex *exchange, uc *upConn) {
	uc.conn.SetDeadline(time.Time{})
	ex.status = ex.resp.StatusCode()
	ex.resp.Header.Del("X-Request-Id")
	ex.resp.Header.Set("X-Request-Id", ex.requestID)
	head := append([]byte(nil), ex.resp.Header.Header()...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer g.finish(ex)
		defer uc.conn.Close()
		if _, err := client.Write(head); err != nil {
			return
		}
		ended := make(chan struct{}, 2)
		go func() {
			io.Copy(uc.conn, client)
			ended <- struct{}{}
		}()
		go func() {
			// uc.br first: it may hold bytes the instance sent right after
			// its 101.
			io.Copy(client, uc.br)
			ended <- struct{}{}
		}()
		<-ended
		// One side ended: end the other, so its copy returns too.
		client.Close()
		uc.conn.Close()
		<-ended
	})
}
