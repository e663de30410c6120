package storeapi

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
)

func TestAuth(t *testing.T) {
	st := startStore(t, nil)
	a := &Auth{Token: "s3cret", Basic: &auth.Basic{Username: "u", Password: "p"}, Seen: limits.NewCounters(auth.Results)}
	_, conn := serve(t, st, func(o *Options) { o.Authorize = a.Authorize })
	c := infopb.NewInfoClient(conn)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	for _, tc := range []struct {
		name string
		md   []string
		code codes.Code
	}{
		{"no credential", nil, codes.Unauthenticated},
		{"bearer", []string{"authorization", "Bearer s3cret"}, codes.OK},
		{"bearer lower case scheme", []string{"authorization", "bearer s3cret"}, codes.OK},
		{"wrong bearer", []string{"authorization", "Bearer nope"}, codes.Unauthenticated},
		{"basic", []string{"authorization", basic}, codes.OK},
		{"two credentials", []string{"authorization", "Bearer s3cret", "authorization", "Bearer s3cret"}, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			_, err := c.Info(ctx, &infopb.InfoRequest{})
			require.Equal(t, tc.code, status.Code(err), "%v", err)
		})
	}
	require.Equal(t, int64(3), a.Seen.Get("allowed"))
	require.Equal(t, int64(3), a.Seen.Get("unauthenticated"))
	require.Error(t, a.Authorize(context.Background()))
}
