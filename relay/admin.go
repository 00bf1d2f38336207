package relay

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// AdminHandler serves the admin API: Prometheus metrics at /metrics, a
// health check at /healthz, and the queue at /api/queue:
//
//	GET  /api/queue[?status=deferred&limit=100]  list messages
//	GET  /api/queue/{id}                         one message with its recipients
//	POST /api/queue/{id}/retry                   make it due now
//	POST /api/queue/{id}/drop                    give up on it
//	GET  /api/optouts[?number=+15551234567]      numbers that opted out
//
// When token is set every request must carry "Authorization: Bearer
// <token>".
func (r *Relay) AdminHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.metrics.WritePrometheus(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		if _, _, err := r.st.Queue.NextDue(req.Context()); err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/queue", func(w http.ResponseWriter, req *http.Request) {
		var opts store.ListOptions
		if s := req.URL.Query().Get("status"); s != "" {
			st, err := store.ParseStatus(s)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			opts.Status = st
		}
		if l := req.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				http.Error(w, "bad limit", http.StatusBadRequest)
				return
			}
			opts.Limit = n
		}
		if r.st.Admin == nil {
			http.Error(w, "no queue administration in this store", http.StatusNotImplemented)
			return
		}
		msgs, err := r.st.Admin.List(req.Context(), opts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, msgs)
	})
	mux.HandleFunc("GET /api/queue/{id}", func(w http.ResponseWriter, req *http.Request) {
		m, err := r.st.Queue.Get(req.Context(), req.PathValue("id"))
		if err != nil {
			storeHTTPError(w, err)
			return
		}
		writeJSON(w, m)
	})
	mux.HandleFunc("GET /api/optouts", func(w http.ResponseWriter, req *http.Request) {
		ro := r.o().Replies
		if ro == nil || ro.Book == nil {
			writeJSON(w, []any{})
			return
		}
		list, err := ro.Book.ListOptOuts(req.Context(), req.URL.Query().Get("number"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("POST /api/queue/{id}/{action}", func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		if r.st.Admin == nil {
			http.Error(w, "no queue administration in this store", http.StatusNotImplemented)
			return
		}
		var err error
		switch req.PathValue("action") {
		case "retry":
			err = r.st.Admin.Retry(req.Context(), id)
			r.Kick()
		case "drop":
			err = r.st.Admin.Drop(req.Context(), id)
		default:
			http.Error(w, "unknown action", http.StatusNotFound)
			return
		}
		if err != nil {
			storeHTTPError(w, err)
			return
		}
		m, err := r.st.Queue.Get(req.Context(), id)
		if err != nil {
			storeHTTPError(w, err)
			return
		}
		writeJSON(w, m)
	})
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mmsrelay"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, req)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func storeHTTPError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "no such message", http.StatusNotFound)
	case errors.Is(err, store.ErrInvalid):
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
