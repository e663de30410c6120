package storeapi

import (
	"path"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// methods are the StoreAPI calls counted, by their short name.
var methods = []string{"Info", "Series", "LabelNames", "LabelValues", "Rules", "Exemplars"}

// numCodes covers every gRPC status code (OK .. Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

// calls counts finished calls by method and status code, refusals by a
// bound or by auth included (ResourceExhausted, InvalidArgument,
// Unauthenticated, ...).
type calls [6][numCodes]atomic.Int64

func (c *calls) count(fullMethod string, err error) {
	m := path.Base(fullMethod)
	for i, name := range methods {
		if name == m {
			code := status.Code(err)
			if int(code) < numCodes {
				c[i][code].Add(1)
			}
			return
		}
	}
}

// Calls reports every non-zero count of finished calls: the method's short
// name (Series, Info, ...) and the gRPC status code's name (OK,
// ResourceExhausted, ...).
func (s *Server) Calls(fn func(method, code string, n int64)) {
	for i, name := range methods {
		for code := range numCodes {
			if n := s.calls[i][code].Load(); n > 0 {
				fn(name, codes.Code(code).String(), n)
			}
		}
	}
}
