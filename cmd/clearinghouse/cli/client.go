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
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// apiClient talks to a running node's HTTP API for the client commands.
type apiClient struct {
	base  string // e.g. http://127.0.0.1:5080, without /api/v1
	token func() (string, error)
	http  *http.Client

	// dataDir is the data directory the client acts for, and where is
	// what it read there to find the API ("api.listen in PATH"), or ""
	// when --api was given.
	dataDir, where string
	// checkReads says that every request is checked (the API address
	// came from the data directory); checkWrites that writes are (their
	// token comes from the data directory).
	checkReads, checkWrites bool
	// checked is set once the node answering is known to be the data
	// directory's.
	checked bool
}

// client returns an API client: the URL from --api, else from api.listen
// in the data directory's config (DefaultAPIListen if there is none); the
// token, read on the first write, from --token, else the data directory's
// api.token.
//
// Whatever the client takes from the data directory, the address or the
// token, it first makes sure that the node answering is that directory's
// node: the directory must exist and the peer id the node reports must be
// the one of the directory's identity key. So a stopped node's directory
// never reads another node's state, and its token is never sent to
// another process.
func (a *app) client() (*apiClient, error) {
	dd, err := a.resolveDataDir()
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: a.apiURL, http: http.DefaultClient, dataDir: dd.Path,
		checkReads: a.apiURL == "", checkWrites: a.token == ""}
	if c.base == "" {
		if _, err := os.Stat(dd.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, &notReadyError{fmt.Errorf("data directory %s does not exist, so there is no node to ask (nothing was sent); "+
				"create one with: %s --data-dir %s init, or name a node with --api URL", dd.Path, progName(), dd.Path)}
		}
		listen := config.DefaultAPIListen
		c.where = "the default api.listen, as " + dd.ConfigPath() + " does not exist"
		cfg, err := config.Load(dd.ConfigPath())
		switch {
		case err == nil:
			listen = cfg.API.Listen
			c.where = "api.listen in " + dd.ConfigPath()
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
		c.base = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{fmt.Errorf("--api %q: want a URL such as http://127.0.0.1:5080", c.base)}
	}
	c.base = strings.TrimSuffix(c.base, "/")
	c.token = func() (string, error) {
		if a.token != "" {
			return a.token, nil
		}
		tok, err := config.LoadToken(dd.TokenPath())
		if err != nil {
			return "", fmt.Errorf("api token: %w (writes need the token of the node's data directory, or --token)", err)
		}
		return tok, nil
	}
	return c, nil
}

// writeClient is client for a command that writes: the check that the
// node is the data directory's, if the write needs it, comes before any
// request, also the reads the command makes first.
func (a *app) writeClient(ctx context.Context) (*apiClient, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	if err := c.check(ctx, true); err != nil {
		return nil, err
	}
	return c, nil
}

// notReadyError is the error for a data directory that is missing or has
// no identity key: an error, except for status --wait, as a node that is
// starting may be writing it.
type notReadyError struct{ err error }

func (e *notReadyError) Error() string { return e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

// errWrongNode is returned by the client when the node answering is not
// the node of the data directory.
var errWrongNode = errors.New("another node answers")

// check makes sure, once, that the node answering at c.base is the node
// of the data directory, if this request needs it. It sends only
// GET /status, without the token.
func (c *apiClient) check(ctx context.Context, write bool) error {
	if c.checked || !(c.checkReads || write && c.checkWrites) {
		return nil
	}
	dd := config.DataDir{Path: c.dataDir}
	if _, err := os.Stat(dd.Path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data directory %s does not exist, so it has no token for this write (nothing was sent); "+
			"give the node's --token, or the --data-dir of the node at %s", dd.Path, c.base)
	}
	want, err := peerID(dd)
	if err != nil {
		return &notReadyError{fmt.Errorf("data directory %s is not a node's (%w), so it has no api token for this request and no peer id "+
			"to check the node at %s against; give --token, or the --data-dir of that node (nothing was sent)", dd.Path, err, c.base)}
	}
	where := c.where
	if where == "" {
		where = "--api"
	}
	var s api.StatusView
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.Prefix+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the node of data directory %s (peer id %s) does not answer at %s (%s): %w; "+
			"is it running? start it with: %s --data-dir %s run", dd.Path, want, c.base, where, err, progName(), dd.Path)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(b, &s) != nil || s.PeerID == "" {
		return fmt.Errorf("%w: %s (%s) is not the API of the node of data directory %s (peer id %s): "+
			"it does not answer GET %s/status with a peer id; nothing else was sent", errWrongNode, c.base, where, dd.Path, want, api.Prefix)
	}
	if s.PeerID != want.String() {
		return fmt.Errorf("%w: the node at %s (%s) is peer id %s, not the node of data directory %s (peer id %s); "+
			"that node is not running, or another node took its API port (give each node on a machine its own api.listen); "+
			"nothing else was sent", errWrongNode, c.base, where, s.PeerID, dd.Path, want)
	}
	c.checked = true
	return nil
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
	if err := c.check(ctx, method != http.MethodGet); err != nil {
		return nil, err
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
	if _, err := c.get(ctx, "/records/"+url.PathEscape(cidStr), &v); isAPICode(err, api.CodeNotFound) {
		return recordRef{}, errRecordNotFound(cidStr)
	} else if err != nil {
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

// progName is binName; tests replace it.
var progName = binName

// binName is how the hints tell the user to run this program: its name if
// a shell finds this very program by it on $PATH, else the path it was
// started by, so that a "try:" line works as printed.
func binName() string {
	arg0 := "clearinghouse"
	if len(os.Args) > 0 && os.Args[0] != "" {
		arg0 = os.Args[0]
	}
	base := filepath.Base(arg0)
	self, err := os.Executable()
	if err != nil {
		return arg0
	}
	if found, err := exec.LookPath(base); err == nil && sameFile(found, self) {
		return base
	}
	if strings.ContainsRune(arg0, os.PathSeparator) {
		return arg0
	}
	return self
}

// sameFile reports whether paths a and b name the same file.
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// isAPICode reports whether err is an error answer of the API with code.
func isAPICode(err error, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}

// errRecordNotFound is the error for a record the node does not hold.
func errRecordNotFound(c string) error {
	return fmt.Errorf("record %s is not on this node: check the CID, or, if another node published it just now, "+
		"let this one catch up (%s sync) and try again", c, progName())
}

// notAProcess explains why c, which the node does not know as a process,
// is not one: another kind of record (and then its process), or no
// record at all.
func (c *apiClient) notAProcess(ctx context.Context, cidStr string) error {
	var v api.RecordView
	if _, err := c.get(ctx, "/records/"+url.PathEscape(cidStr), &v); err != nil {
		if isAPICode(err, api.CodeNotFound) {
			return fmt.Errorf("no process %s on this node: no record has that CID here; a process is named by the CID of its charter "+
				"(see: %s process list SLUG)", cidStr, progName())
		}
		return err
	}
	msg := fmt.Sprintf("%s is a %s record, not a process: a process is named by the CID of its charter", cidStr, v.Kind)
	if b, ok := v.Body.(map[string]any); ok {
		if p, ok := b["process"].(map[string]any); ok {
			if pc, ok := p["/"].(string); ok {
				msg += fmt.Sprintf("; this record belongs to process %s: %s process show %s", pc, progName(), pc)
			}
		}
	}
	if v.Kind == protocol.KindCharter {
		msg = fmt.Sprintf("%s is a charter that this node does not count as a process (it is not valid under the governance rules here); "+
			"see: %s record get %s", cidStr, progName(), cidStr)
	}
	return errors.New(msg)
}
