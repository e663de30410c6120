package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Client sends JSON requests to the API server over the connection an
// APIConfig describes, with its credentials. One Client may serve many
// reflectors and requests at once.
type Client struct {
	conn      *conn
	userAgent string
}

// NewClient resolves cfg's connection; userAgent is sent with every
// request (empty: "weft"). It reads the kubeconfig and the token and CA
// files, but does not contact the server.
func NewClient(cfg APIConfig, userAgent string) (*Client, error) {
	c, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	if userAgent == "" {
		userAgent = "weft"
	}
	return &Client{conn: c, userAgent: userAgent}, nil
}

// Server is the API server's URL, without credentials, for logs.
func (c *Client) Server() string { return c.conn.base.Redacted() }

// Close releases idle connections; call it once nothing uses the client.
func (c *Client) Close() { c.conn.client.CloseIdleConnections() }

// StatusError is an answer of the API server other than 2xx, or a watch's
// ERROR event.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Reason is the Status object's reason (e.g. Expired), if any.
	Reason string
	// Message is the Status object's message, if any.
	Message string
}

func (e *StatusError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Code)
	}
	if e.Message != "" {
		return fmt.Sprintf("%d %s: %s", e.Code, reason, e.Message)
	}
	return fmt.Sprintf("%d %s", e.Code, reason)
}

// isGone reports whether err is the API server's 410 Gone: a
// resourceVersion or continue token too old to serve.
func isGone(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusGone
}

const (
	// maxAnswer bounds the body of an answer to PostJSON.
	maxAnswer = 1 << 20
	// maxStatus bounds the body of an answer other than 2xx.
	maxStatus = 64 << 10
)

// GetJSON sends a GET to path (e.g. /api/v1/pods) with query and decodes
// the 2xx answer into out. Another status is a *StatusError.
func (c *Client) GetJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", c.redacted(path), err)
	}
	return nil
}

// PostJSON sends in as JSON to path (e.g.
// /apis/authentication.k8s.io/v1/tokenreviews) and decodes a 2xx answer
// into out. Another status is a *StatusError. Errors never contain the
// request body.
func (c *Client) PostJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", c.redacted(path), err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", c.redacted(path), err)
	}
	return nil
}

// do sends one request with the connection's credentials and returns the
// response if its status is 2xx; the caller closes its body. Any other
// status is a *StatusError. Errors name the method and the URL without
// credentials and query (a continue token is long and says nothing).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := *c.conn.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := c.conn.token()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if c.conn.user != "" {
		req.SetBasicAuth(c.conn.user, c.conn.password)
	}
	resp, err := c.conn.client.Do(req)
	if err != nil {
		// The *url.Error would repeat the URL, with its credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, c.redacted(path), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxStatus))
	var st status
	_ = json.Unmarshal(raw, &st)
	return nil, fmt.Errorf("%s %s: %w", method, c.redacted(path), &StatusError{Code: resp.StatusCode, Reason: st.Reason, Message: st.Message})
}

// redacted is path's URL without credentials.
func (c *Client) redacted(path string) string {
	u := *c.conn.base
	u.Path += path
	return u.Redacted()
}
