package jaegerapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseTraceID(t *testing.T) {
	id, err := ParseTraceID("abc")
	require.NoError(t, err)
	assert.Equal(t, "00000000000000000000000000000abc", id.String())
	const full = "4bf92f3577b34da6a3ce929d0e0e4736"
	id, err = ParseTraceID(full)
	require.NoError(t, err)
	assert.Equal(t, full, id.String())
	for _, bad := range []string{"", "g", "0123456789abcdef0123456789abcdef0"} {
		_, err := ParseTraceID(bad)
		assert.Error(t, err, bad)
	}
}

// fixture is the API over a store with querytest's data, on a loopback
// port.
type fixture struct {
	url string
	t0  time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st := weftstoretest.Start(t, nil)
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).UTC()
	querytest.Fill(t, st, t0)
	mux := http.NewServeMux()
	api := &API{Catalog: st, Traces: st, Now: time.Now, Gate: func(h http.HandlerFunc) http.HandlerFunc { return h }}
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, t0: t0}
}

// get answers a GET of rawURL: status and body.
func get(t testing.TB, rawURL string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(rawURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}
