package weftquery

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authResult is the outcome of checking one request's credentials.
type authResult int

const (
	// authAllowed: a valid credential whose user may use the API.
	authAllowed authResult = iota
	// authUnauthenticated: no credential, or an invalid one (401).
	authUnauthenticated
	// authForbidden: a valid Kubernetes token whose user is not allowed
	// auth.kubernetes.resource_attributes (403).
	authForbidden
	// authUnavailable: the API server could not answer a review (503).
	authUnavailable
)

func (r authResult) String() string {
	switch r {
	case authAllowed:
		return "allowed"
	case authUnauthenticated:
		return "unauthenticated"
	case authForbidden:
		return "forbidden"
	case authUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// authResults are the values of the result attribute of
// weft_query.auth_requests.
var authResults = []string{authAllowed.String(), authUnauthenticated.String(), authForbidden.String(), authUnavailable.String()}

// public reports whether a path is served without credentials (probes).
func public(path string) bool { return path == "/healthz" || path == "/ready" }

// authenticate answers 401, 403 or 503 to requests without an allowed
// credential when auth is configured; /healthz and /ready are always open
// (kubelet probes carry no credential), and so are CORS preflights.
func (s *server) authenticate(next http.Handler) http.Handler {
	if !s.cfg.Auth.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r.URL.Path) || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		res := s.authorize(r)
		s.authSeen.add(res.String())
		switch res {
		case authAllowed:
			next.ServeHTTP(w, r)
		case authForbidden:
			http.Error(w, "forbidden", http.StatusForbidden)
		case authUnavailable:
			// The reason is logged (kubeAuth.warn), not told to the client.
			w.Header().Set("Retry-After", "5")
			http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
		default:
			if s.cfg.Auth.Basic != nil {
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
func (s *server) authorize(r *http.Request) authResult {
	scheme, cred := splitAuthorization(r.Header.Get("Authorization"))
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		if s.token != "" && equalSecret(cred, s.token) {
			return authAllowed
		}
		if s.kube != nil {
			return s.kube.check(r.Context(), cred)
		}
	case strings.EqualFold(scheme, "Basic") && s.cfg.Auth.Basic != nil:
		b := s.cfg.Auth.Basic
		if u, p, ok := r.BasicAuth(); ok {
			// Both comparisons always run, so timing does not tell which failed.
			uok := equalSecret(u, b.Username)
			pok := equalSecret(p, string(b.Password))
			if uok && pok {
				return authAllowed
			}
		}
	}
	return authUnauthenticated
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
