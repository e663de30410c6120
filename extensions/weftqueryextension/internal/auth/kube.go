package auth

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/internal/kube"
)

// Kubernetes authentication, as kube-rbac-proxy does it: a request's bearer
// token goes to the API server in a TokenReview; the user it names must be
// allowed auth.kubernetes.resource_attributes by a SubjectAccessReview.
// Decisions are remembered by the SHA-256 of the token (never the token),
// allowed ones for cache_ttl, refused ones for negative_cache_ttl; a
// failed review is not remembered. Concurrent requests with the same token
// wait for one review.

const (
	TokenReviewPath         = "/apis/authentication.k8s.io/v1/tokenreviews"
	SubjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
)

// Kinds of review, the kind attribute of weft_query.auth_reviews.
const (
	ReviewToken  = "tokenreview"
	ReviewAccess = "subjectaccessreview"
)

var ReviewKinds = []string{ReviewToken, ReviewAccess}

// apiPoster is the API server as the reviews use it (kube.Client).
type apiPoster interface {
	PostJSON(ctx context.Context, path string, in, out any) error
	Close()
}

// TokenReview is the part of authentication.k8s.io/v1 TokenReview used here.
type TokenReview struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Spec       TokenReviewSpec   `json:"spec"`
	Status     TokenReviewStatus `json:"status,omitzero"`
}

type TokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type TokenReviewStatus struct {
	Authenticated bool     `json:"authenticated"`
	User          UserInfo `json:"user"`
	Audiences     []string `json:"audiences"`
	Error         string   `json:"error"`
}

type UserInfo struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// SubjectAccessReview is the part of authorization.k8s.io/v1
// SubjectAccessReview used here.
type SubjectAccessReview struct {
	APIVersion string                    `json:"apiVersion"`
	Kind       string                    `json:"kind"`
	Spec       SubjectAccessReviewSpec   `json:"spec"`
	Status     SubjectAccessReviewStatus `json:"status,omitzero"`
}

type SubjectAccessReviewSpec struct {
	ResourceAttributes *SARResourceAttributes `json:"resourceAttributes"`
	User               string                 `json:"user"`
	Groups             []string               `json:"groups,omitempty"`
	Extra              map[string][]string    `json:"extra,omitempty"`
	UID                string                 `json:"uid,omitempty"`
}

type SARResourceAttributes struct {
	Namespace   string `json:"namespace,omitempty"`
	Verb        string `json:"verb"`
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Name        string `json:"name,omitempty"`
}

type SubjectAccessReviewStatus struct {
	Allowed bool `json:"allowed"`
	Denied  bool `json:"denied,omitempty"`
}

// Kube checks bearer tokens with the API server and remembers the
// decisions.
type Kube struct {
	cfg    KubeConfig
	api    apiPoster
	logger *zap.Logger
	now    func() time.Time

	mu       sync.Mutex
	cache    map[[sha256.Size]byte]kubeDecision
	inflight map[[sha256.Size]byte]*reviewCall

	reviews  limits.Counters // requests to the API server, by kind
	lastWarn atomic.Int64    // unix nanoseconds of the last logged API failure
}

type kubeDecision struct {
	result  Result
	expires time.Time
}

// reviewCall is a review in progress; others with the same token wait for it.
type reviewCall struct {
	done   chan struct{}
	result Result
}

// ResourceAttributes are the SubjectAccessReview resource attributes a
// request's user must be allowed (the front door's auth.kubernetes.
// resource_attributes).
type ResourceAttributes struct {
	Verb, Group, Resource, Subresource, Name, Namespace string
}

// KubeConfig is auth.kubernetes.
type KubeConfig struct {
	API                        kube.APIConfig
	Audiences                  []string
	ResourceAttributes         ResourceAttributes
	CacheTTL, NegativeCacheTTL time.Duration
	CacheSize                  int
	Timeout                    time.Duration
}

// NewKube connects through internal/kube (explicit URL, kubeconfig or
// in-cluster service account); it does not contact the API server. now is
// the clock of the cache (time.Now).
func NewKube(cfg KubeConfig, logger *zap.Logger, now func() time.Time) (*Kube, error) {
	c, err := kube.NewClient(cfg.API, "weft-query")
	if err != nil {
		return nil, err
	}
	return &Kube{
		cfg: cfg, api: c, logger: logger, now: now,
		cache:    make(map[[sha256.Size]byte]kubeDecision),
		inflight: make(map[[sha256.Size]byte]*reviewCall),
		reviews:  limits.NewCounters(ReviewKinds),
	}, nil
}

// Close drops the idle connections to the API server.
func (k *Kube) Close() { k.api.Close() }

// Reviews counts the requests to the API server, by ReviewKinds.
func (k *Kube) Reviews() limits.Counters { return k.reviews }

// Check returns the decision for token: remembered, joined to a review in
// progress, or from a new review.
func (k *Kube) Check(ctx context.Context, token string) Result {
	key := sha256.Sum256([]byte(token))
	k.mu.Lock()
	if d, ok := k.cache[key]; ok {
		if k.now().Before(d.expires) {
			k.mu.Unlock()
			return d.result
		}
		delete(k.cache, key)
	}
	if c, ok := k.inflight[key]; ok {
		k.mu.Unlock()
		select {
		case <-c.done:
			return c.result
		case <-ctx.Done():
			return Unavailable // the client left
		}
	}
	c := &reviewCall{done: make(chan struct{})}
	k.inflight[key] = c
	k.mu.Unlock()

	// The review is shared: it runs to its own timeout even if this
	// request's client leaves.
	c.result = k.review(context.WithoutCancel(ctx), token)

	k.mu.Lock()
	delete(k.inflight, key)
	ttl := k.cfg.NegativeCacheTTL
	switch c.result {
	case Allowed:
		ttl = k.cfg.CacheTTL
	case Unavailable:
		ttl = 0 // ask again next time
	}
	if ttl > 0 {
		k.remember(key, kubeDecision{result: c.result, expires: k.now().Add(ttl)})
	}
	k.mu.Unlock()
	close(c.done)
	return c.result
}

// remember stores a decision, making room when the cache is full: first
// by dropping expired decisions, then a refused one (so a flood of bad
// tokens does not push out the allowed ones), then any. k.mu is held.
func (k *Kube) remember(key [sha256.Size]byte, d kubeDecision) {
	if len(k.cache) >= k.cfg.CacheSize {
		now := k.now()
		var victim *[sha256.Size]byte
		for h, old := range k.cache {
			if !now.Before(old.expires) {
				delete(k.cache, h)
				continue
			}
			if victim == nil || old.result != Allowed {
				v := h
				victim = &v
			}
		}
		if len(k.cache) >= k.cfg.CacheSize && victim != nil {
			delete(k.cache, *victim)
		}
	}
	k.cache[key] = d
}

// review asks the API server who the token belongs to, then whether that
// user may use the API.
func (k *Kube) review(ctx context.Context, token string) Result {
	tr := TokenReview{
		APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview",
		Spec: TokenReviewSpec{Token: token, Audiences: k.cfg.Audiences},
	}
	var trOut TokenReview
	if err := k.post(ctx, ReviewToken, TokenReviewPath, &tr, &trOut); err != nil {
		return Unavailable
	}
	st := trOut.Status
	if !st.Authenticated || st.User.Username == "" {
		return Unauthenticated
	}
	// With audiences asked for, the API server names the ones the token is
	// valid for; one of them must be ours.
	if len(k.cfg.Audiences) > 0 && !slices.ContainsFunc(st.Audiences, func(a string) bool { return slices.Contains(k.cfg.Audiences, a) }) {
		return Unauthenticated
	}
	ra := k.cfg.ResourceAttributes
	sar := SubjectAccessReview{
		APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview",
		Spec: SubjectAccessReviewSpec{
			ResourceAttributes: &SARResourceAttributes{
				Namespace: ra.Namespace, Verb: ra.Verb, Group: ra.Group,
				Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name,
			},
			User: st.User.Username, Groups: st.User.Groups, Extra: st.User.Extra, UID: st.User.UID,
		},
	}
	var sarOut SubjectAccessReview
	if err := k.post(ctx, ReviewAccess, SubjectAccessReviewPath, &sar, &sarOut); err != nil {
		return Unavailable
	}
	if sarOut.Status.Allowed && !sarOut.Status.Denied {
		return Allowed
	}
	return Forbidden
}

// post sends one review within auth.kubernetes.timeout and counts it. A
// failure is logged at most once a minute, without the token (the
// request body is never part of the error).
func (k *Kube) post(ctx context.Context, kind, path string, in, out any) error {
	k.reviews.Add(kind)
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	err := k.api.PostJSON(ctx, path, in, out)
	if err != nil {
		now := k.now().UnixNano()
		if last := k.lastWarn.Load(); now-last >= int64(time.Minute) && k.lastWarn.CompareAndSwap(last, now) {
			k.logger.Warn("Kubernetes authentication unavailable; requests with a token answer 503",
				zap.String("review", kind), zap.Error(err))
		}
	}
	return err
}
