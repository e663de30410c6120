package storeapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
)

// Auth checks each call's "authorization" metadata (what Thanos Query
// sends with --endpoint's bearer token, or a gRPC client's per-RPC
// credentials) as weft_query's HTTP side checks its Authorization header:
// a bearer token against Token, then the Kubernetes API server; basic
// credentials against Basic. A client certificate verified by mTLS is
// checked by the TLS handshake, before this.
type Auth struct {
	Token string      // empty: no static token
	Basic *auth.Basic // nil: no basic auth
	Kube  *auth.Kube  // nil: no Kubernetes reviews
	// Seen counts the decisions by auth.Result (weft_query.auth_requests).
	Seen limits.Counters
}

// Authorize is Options.Authorize: nil for an allowed credential, else
// Unauthenticated, PermissionDenied or Unavailable.
func (a *Auth) Authorize(ctx context.Context) error {
	res := a.check(ctx)
	if a.Seen != nil {
		a.Seen.Add(res.String())
	}
	switch res {
	case auth.Allowed:
		return nil
	case auth.Forbidden:
		return status.Error(codes.PermissionDenied, "forbidden: the credential's user may not read this node")
	case auth.Unavailable:
		return status.Error(codes.Unavailable, "authentication unavailable")
	}
	return status.Error(codes.Unauthenticated, `missing or invalid credential: send "authorization: Bearer <token>" metadata`)
}

func (a *Auth) check(ctx context.Context) auth.Result {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return auth.Unauthenticated
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		if a.Token != "" && equalSecret(cred, a.Token) {
			return auth.Allowed
		}
		if a.Kube != nil {
			return a.Kube.Check(ctx, cred)
		}
	case strings.EqualFold(scheme, "Basic") && a.Basic != nil:
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return auth.Unauthenticated
		}
		u, p, _ := strings.Cut(string(raw), ":")
		// Both comparisons run, so timing does not tell which failed.
		uok, pok := equalSecret(u, a.Basic.Username), equalSecret(p, a.Basic.Password)
		if uok && pok {
			return auth.Allowed
		}
	}
	return auth.Unauthenticated
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
