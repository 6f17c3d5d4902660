package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// apiClient talks to a running node's HTTP API for the client commands.
type apiClient struct {
	base  string // e.g. http://127.0.0.1:5080, without /api/v1
	token func() (string, error)
	http  *http.Client
}

// client returns an API client: the URL from --api, else from api.listen
// in the data directory's config (DefaultAPIListen if there is none); the
// token, read on the first write, from --token, else the data directory's
// api.token.
func (a *app) client() (*apiClient, error) {
	base := a.apiURL
	if base == "" {
		listen := config.DefaultAPIListen
		dd, err := a.resolveDataDir()
		if err != nil {
			return nil, err
		}
		cfg, err := config.Load(dd.ConfigPath())
		switch {
		case err == nil:
			listen = cfg.API.Listen
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("api.listen %q: %w", listen, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{fmt.Errorf("--api %q: want a URL such as http://127.0.0.1:5080", base)}
	}
	return &apiClient{
		base: strings.TrimSuffix(base, "/"),
		http: http.DefaultClient,
		token: func() (string, error) {
			if a.token != "" {
				return a.token, nil
			}
			dd, err := a.resolveDataDir()
			if err != nil {
				return "", err
			}
			tok, err := config.LoadToken(dd.TokenPath())
			if err != nil {
				return "", fmt.Errorf("api token: %w (writes need the token of the node's data directory, or --token)", err)
			}
			return tok, nil
		},
	}, nil
}

// do sends a request to path (under /api/v1 unless it starts with
// /metrics) and returns the response body. A non-2xx answer becomes an
// error with the API's message and protocol reason.
func (c *apiClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, rd)
	if err != nil {
		return nil, err
	}
	if method != http.MethodGet {
		tok, err := c.token()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the node API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiError(resp.StatusCode, b)
	}
	return b, nil
}

// apiError turns an error answer into an error shown as
// "<message> (reason: <reason>)".
func apiError(status int, b []byte) error {
	var e struct {
		Error *api.Error `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != nil {
		return e.Error
	}
	return fmt.Errorf("node API answered %d %s", status, http.StatusText(status))
}

// get decodes a GET answer into out.
func (c *apiClient) get(ctx context.Context, path string, out any) ([]byte, error) {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("decode answer of %s: %w", path, err)
		}
	}
	return b, nil
}

// publish posts a record and returns its view.
func (c *apiClient) publish(ctx context.Context, kind, topic string, body any, deps ...string) (*api.RecordView, error) {
	if deps == nil {
		deps = []string{}
	}
	b, err := c.do(ctx, http.MethodPost, "/records", map[string]any{"kind": kind, "topic": topic, "body": body, "deps": deps})
	if err != nil {
		return nil, err
	}
	var v api.RecordView
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode published record: %w", err)
	}
	return &v, nil
}

// link is a JSON link to a CID.
func link(c string) map[string]string { return map[string]string{"/": c} }

// recordRef is what a client command needs to know of a record it refers
// to: its topic and the process it belongs to.
type recordRef struct {
	CID, Kind, Topic, Process string
}

// ref looks a record up: a process record's process is in its body; a
// charter is its own process.
func (c *apiClient) ref(ctx context.Context, cidStr string) (recordRef, error) {
	if cidStr == "" {
		return recordRef{}, &usageError{errors.New("a record CID is required")}
	}
	var v api.RecordView
	if _, err := c.get(ctx, "/records/"+url.PathEscape(cidStr), &v); err != nil {
		return recordRef{}, fmt.Errorf("record %s: %w", cidStr, err)
	}
	r := recordRef{CID: v.CID, Kind: v.Kind, Topic: v.Topic}
	if v.Kind == "process.charter" {
		r.Process = v.CID
	} else if b, ok := v.Body.(map[string]any); ok {
		if p, ok := b["process"].(map[string]any); ok {
			r.Process, _ = p["/"].(string)
		}
	}
	if r.Process == "" {
		return recordRef{}, fmt.Errorf("record %s is a %s, not part of a process", cidStr, v.Kind)
	}
	return r, nil
}

// printJSON writes an API answer as it came, ending in a newline.
func printJSON(w io.Writer, b []byte) {
	b = bytes.TrimRight(b, "\n")
	fmt.Fprintf(w, "%s\n", b)
}
