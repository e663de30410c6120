package weftquery

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

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
	tokenReviewPath         = "/apis/authentication.k8s.io/v1/tokenreviews"
	subjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
)

// Kinds of review, the kind attribute of weft_query.auth_reviews.
const (
	reviewToken  = "tokenreview"
	reviewAccess = "subjectaccessreview"
)

var reviewKinds = []string{reviewToken, reviewAccess}

// apiPoster is the API server as the reviews use it (kube.Client).
type apiPoster interface {
	PostJSON(ctx context.Context, path string, in, out any) error
	Close()
}

// tokenReview is the part of authentication.k8s.io/v1 TokenReview used here.
type tokenReview struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Spec       tokenReviewSpec   `json:"spec"`
	Status     tokenReviewStatus `json:"status,omitzero"`
}

type tokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type tokenReviewStatus struct {
	Authenticated bool     `json:"authenticated"`
	User          userInfo `json:"user"`
	Audiences     []string `json:"audiences"`
	Error         string   `json:"error"`
}

type userInfo struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// subjectAccessReview is the part of authorization.k8s.io/v1
// SubjectAccessReview used here.
type subjectAccessReview struct {
	APIVersion string                    `json:"apiVersion"`
	Kind       string                    `json:"kind"`
	Spec       subjectAccessReviewSpec   `json:"spec"`
	Status     subjectAccessReviewStatus `json:"status,omitzero"`
}

type subjectAccessReviewSpec struct {
	ResourceAttributes *sarResourceAttributes `json:"resourceAttributes"`
	User               string                 `json:"user"`
	Groups             []string               `json:"groups,omitempty"`
	Extra              map[string][]string    `json:"extra,omitempty"`
	UID                string                 `json:"uid,omitempty"`
}

type sarResourceAttributes struct {
	Namespace   string `json:"namespace,omitempty"`
	Verb        string `json:"verb"`
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Name        string `json:"name,omitempty"`
}

type subjectAccessReviewStatus struct {
	Allowed bool `json:"allowed"`
	Denied  bool `json:"denied,omitempty"`
}

// kubeAuth checks bearer tokens with the API server and remembers the
// decisions.
type kubeAuth struct {
	cfg    KubernetesAuthConfig
	api    apiPoster
	logger *zap.Logger
	now    func() time.Time

	mu       sync.Mutex
	cache    map[[sha256.Size]byte]kubeDecision
	inflight map[[sha256.Size]byte]*reviewCall

	reviews  counters     // requests to the API server, by kind
	lastWarn atomic.Int64 // unix nanoseconds of the last logged API failure
}

type kubeDecision struct {
	result  authResult
	expires time.Time
}

// reviewCall is a review in progress; others with the same token wait for it.
type reviewCall struct {
	done   chan struct{}
	result authResult
}

// newKubeAuth connects through internal/kube (explicit URL, kubeconfig or
// in-cluster service account); it does not contact the API server.
func newKubeAuth(cfg KubernetesAuthConfig, logger *zap.Logger) (*kubeAuth, error) {
	c, err := kube.NewClient(cfg.APIConfig, "weft-query")
	if err != nil {
		return nil, err
	}
	return &kubeAuth{
		cfg: cfg, api: c, logger: logger, now: time.Now,
		cache:    make(map[[sha256.Size]byte]kubeDecision),
		inflight: make(map[[sha256.Size]byte]*reviewCall),
		reviews:  newCounters(reviewKinds),
	}, nil
}

func (k *kubeAuth) close() { k.api.Close() }

// check returns the decision for token: remembered, joined to a review in
// progress, or from a new review.
func (k *kubeAuth) check(ctx context.Context, token string) authResult {
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
			return authUnavailable // the client left
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
	case authAllowed:
		ttl = k.cfg.CacheTTL
	case authUnavailable:
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
func (k *kubeAuth) remember(key [sha256.Size]byte, d kubeDecision) {
	if len(k.cache) >= k.cfg.CacheSize {
		now := k.now()
		var victim *[sha256.Size]byte
		for h, old := range k.cache {
			if !now.Before(old.expires) {
				delete(k.cache, h)
				continue
			}
			if victim == nil || old.result != authAllowed {
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
func (k *kubeAuth) review(ctx context.Context, token string) authResult {
	tr := tokenReview{
		APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview",
		Spec: tokenReviewSpec{Token: token, Audiences: k.cfg.Audiences},
	}
	var trOut tokenReview
	if err := k.post(ctx, reviewToken, tokenReviewPath, &tr, &trOut); err != nil {
		return authUnavailable
	}
	st := trOut.Status
	if !st.Authenticated || st.User.Username == "" {
		return authUnauthenticated
	}
	// With audiences asked for, the API server names the ones the token is
	// valid for; one of them must be ours.
	if len(k.cfg.Audiences) > 0 && !slices.ContainsFunc(st.Audiences, func(a string) bool { return slices.Contains(k.cfg.Audiences, a) }) {
		return authUnauthenticated
	}
	ra := k.cfg.ResourceAttributes
	sar := subjectAccessReview{
		APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview",
		Spec: subjectAccessReviewSpec{
			ResourceAttributes: &sarResourceAttributes{
				Namespace: ra.Namespace, Verb: ra.Verb, Group: ra.Group,
				Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name,
			},
			User: st.User.Username, Groups: st.User.Groups, Extra: st.User.Extra, UID: st.User.UID,
		},
	}
	var sarOut subjectAccessReview
	if err := k.post(ctx, reviewAccess, subjectAccessReviewPath, &sar, &sarOut); err != nil {
		return authUnavailable
	}
	if sarOut.Status.Allowed && !sarOut.Status.Denied {
		return authAllowed
	}
	return authForbidden
}

// post sends one review within auth.kubernetes.timeout and counts it. A
// failure is logged at most once a minute, without the token (the
// request body is never part of the error).
func (k *kubeAuth) post(ctx context.Context, kind, path string, in, out any) error {
	k.reviews.add(kind)
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
