// Package auth authenticates weft_query's requests: a static bearer token,
// one basic-auth user, or a Kubernetes bearer token reviewed by the API
// server (TokenReview, then SubjectAccessReview, as kube-rbac-proxy does).
package auth

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
)

// Result is the outcome of checking one request's credentials.
type Result int

const (
	// Allowed: a valid credential whose user may use the API.
	Allowed Result = iota
	// Unauthenticated: no credential, or an invalid one (401).
	Unauthenticated
	// Forbidden: a valid Kubernetes token whose user is not allowed
	// auth.kubernetes.resource_attributes (403).
	Forbidden
	// Unavailable: the API server could not answer a review (503).
	Unavailable
)

func (r Result) String() string {
	switch r {
	case Allowed:
		return "allowed"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

// Results are the values of the result attribute of
// weft_query.auth_requests.
var Results = []string{Allowed.String(), Unauthenticated.String(), Forbidden.String(), Unavailable.String()}

// Public reports whether a path is served without credentials (probes).
func Public(path string) bool { return path == "/healthz" || path == "/ready" }

// Basic is the one basic-auth user.
type Basic struct {
	Username, Password string
}

// Authenticator checks every request's credential but the probes'.
type Authenticator struct {
	Token string // bearer token; empty: none
	Basic *Basic // nil: no basic auth
	Kube  *Kube  // nil: no Kubernetes reviews
	// Seen counts the decisions, by Result.String().
	Seen limits.Counters
}

// Wrap answers 401, 403 or 503 to requests without an allowed credential;
// /healthz and /ready are always open (kubelet probes carry no
// credential), and so are CORS preflights.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Public(r.URL.Path) || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		res := a.authorize(r)
		a.Seen.Add(res.String())
		switch res {
		case Allowed:
			next.ServeHTTP(w, r)
		case Forbidden:
			http.Error(w, "forbidden", http.StatusForbidden)
		case Unavailable:
			// The reason is logged (Kube.warn), not told to the client.
			w.Header().Set("Retry-After", "5")
			http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
		default:
			if a.Basic != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="weft"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	})
}

// authorize checks a request's Authorization header: a bearer token
// against the configured token, then the API server; basic credentials
// against the configured user.
func (a *Authenticator) authorize(r *http.Request) Result {
	scheme, cred := splitAuthorization(r.Header.Get("Authorization"))
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		if a.Token != "" && equalSecret(cred, a.Token) {
			return Allowed
		}
		if a.Kube != nil {
			return a.Kube.Check(r.Context(), cred)
		}
	case strings.EqualFold(scheme, "Basic") && a.Basic != nil:
		b := a.Basic
		if u, p, ok := r.BasicAuth(); ok {
			// Both comparisons always run, so timing does not tell which failed.
			uok := equalSecret(u, b.Username)
			pok := equalSecret(p, b.Password)
			if uok && pok {
				return Allowed
			}
		}
	}
	return Unauthenticated
}

// splitAuthorization splits an Authorization header into its scheme and
// credentials (RFC 7235: scheme, one or more spaces, credentials; the
// scheme is compared case-insensitively by the caller).
func splitAuthorization(h string) (scheme, cred string) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return scheme, ""
	}
	return scheme, strings.TrimSpace(cred)
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
