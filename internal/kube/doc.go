// Package kube is weft's one Kubernetes API client, written with nothing
// but net/http and encoding/json so that k8s.io/client-go and its type
// registry stay out of weft's binary.
//
//   - APIConfig is the connection every component configures with the same
//     keys (api_server, kubeconfig_file, token_file, ca_file): an explicit
//     URL, a kubeconfig file's current context, or the in-cluster service
//     account.
//   - Client sends JSON requests over that connection with its credentials
//     (GetJSON, PostJSON); weft_query's TokenReview and SubjectAccessReview
//     use it directly.
//   - Reflector keeps one collection in sync, as client-go's reflector does:
//     a paginated list, then a watch from the list's resourceVersion with
//     bookmarks; 410 Gone lists again; failures wait for a jittered
//     exponential backoff (internal/backoff). Its handler receives typed Added, Modified and
//     Deleted events. pod_scrape's pod discovery (Pod) and weft_rules'
//     PrometheusRule source are reflectors.
//
// Objects are decoded into the consumer's own type, which holds only the
// fields it reads (Pod is the part of core/v1 Pod that pod discovery reads).
package kube
