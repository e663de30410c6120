package kubepods

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Client sends single JSON requests to the API server over the connection
// a Config describes (explicit URL, kubeconfig or in-cluster service
// account), with the same TLS and credentials as the pod watch. Consumers
// that are not pod watches (weft_query's TokenReview and
// SubjectAccessReview) use it instead of a client of their own.
type Client struct {
	conn      *conn
	userAgent string
}

// NewClient resolves cfg's connection (APIServer, KubeConfigFile,
// ServiceAccountDir, UserAgent; the pod selectors are not used). It does
// not contact the server.
func NewClient(cfg Config) (*Client, error) {
	c, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "weft"
	}
	return &Client{conn: c, userAgent: cfg.UserAgent}, nil
}

// StatusError is an answer of the API server other than 2xx.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the Status object's message, if the body held one.
	Message string
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
	}
	return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
}

// maxAnswer bounds the body of an answer to PostJSON.
const maxAnswer = 1 << 20

// PostJSON sends in as JSON to path (e.g.
// /apis/authentication.k8s.io/v1/tokenreviews) and decodes a 2xx answer
// into out. Another status is a *StatusError. Errors never contain the
// request body.
func (c *Client) PostJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	u := *c.conn.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	tok, err := c.conn.token()
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if c.conn.user != "" {
		req.SetBasicAuth(c.conn.user, c.conn.password)
	}
	resp, err := c.conn.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redact(u.String()), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", redact(u.String()), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var st status
		_ = json.Unmarshal(raw, &st)
		return &StatusError{Code: resp.StatusCode, Message: st.Message}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", redact(u.String()), err)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() { c.conn.client.CloseIdleConnections() }
