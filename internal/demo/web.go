package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// webServer is the tutorial's nginx on one node: a listening socket created
// inside the node's namespace and served from a goroutine of the demo.
//
// Concurrency: Run owns the serving goroutines; Close may be called from
// any goroutine.
type webServer struct {
	srv *http.Server
	ln  net.Listener
}

// listenWeb opens port 80 on every address of the host (the VIP included,
// whenever the host holds it).
func listenWeb(h *lab.Host, n Node) (*webServer, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("demo: web server on %s: %w", n.Name, err)
	}
	page := pageText(n)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, page)
	})
	return &webServer{
		ln:  ln,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: nil},
	}, nil
}

// Serve serves until Close; it returns nil after Close.
func (w *webServer) Serve() error {
	if err := w.srv.Serve(w.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the server and its connections.
func (w *webServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil {
		return w.srv.Close()
	}
	return nil
}
