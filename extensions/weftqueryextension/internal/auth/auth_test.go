package auth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestKubernetesAuthCacheBound: the cache holds at most cache_size
// decisions; a full cache drops expired ones first, then refused ones, so
// a flood of bad tokens does not push out an allowed one.
func TestKubernetesAuthCacheBound(t *testing.T) {
	clock := newTestClock()
	k := &Kube{cfg: KubeConfig{CacheSize: 3}, now: clock.now, cache: map[[sha256.Size]byte]kubeDecision{}}
	key := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	later := clock.now().Add(time.Minute)
	k.remember(key("allowed"), kubeDecision{result: Allowed, expires: later})
	for i := range 100 {
		k.remember(key(fmt.Sprint("bad-", i)), kubeDecision{result: Unauthenticated, expires: later})
		require.LessOrEqual(t, len(k.cache), 3)
	}
	assert.Contains(t, k.cache, key("allowed"))
	assert.Contains(t, k.cache, key("bad-99"))

	// Expired decisions go first.
	k.cache = map[[sha256.Size]byte]kubeDecision{}
	for _, s := range []string{"a", "b", "c"} {
		k.remember(key(s), kubeDecision{result: Allowed, expires: clock.now().Add(time.Second)})
	}
	clock.advance(2 * time.Second)
	k.remember(key("d"), kubeDecision{result: Allowed, expires: clock.now().Add(time.Minute)})
	assert.Len(t, k.cache, 1)
	// Keys are hashes: no token is kept.
	for h := range k.cache {
		assert.False(t, slices.Contains([]string{"a", "b", "c", "d"}, string(h[:])))
	}
}

func TestAuthenticator(t *testing.T) {
	a := &Authenticator{Token: "tok", Basic: &Basic{Username: "u", Password: "p"}, Seen: limits.NewCounters(Results)}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, c := range []struct {
		name, path, method, header string
		want                       int
	}{
		{"probe", "/healthz", http.MethodGet, "", http.StatusTeapot},
		{"preflight", "/api/v1/query", http.MethodOptions, "", http.StatusTeapot},
		{"no credential", "/api/v1/query", http.MethodGet, "", http.StatusUnauthorized},
		{"token", "/api/v1/query", http.MethodGet, "bearer tok", http.StatusTeapot},
		{"wrong token", "/api/v1/query", http.MethodGet, "Bearer tok2", http.StatusUnauthorized},
		{"basic", "/api/v1/query", http.MethodGet, "Basic dTpw", http.StatusTeapot},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			assert.Equal(t, c.want, rec.Code)
		})
	}
	assert.Equal(t, int64(2), a.Seen.Get(Allowed.String()))
	assert.Equal(t, int64(2), a.Seen.Get(Unauthenticated.String()))
}
