package storeapi

import (
	"context"
	"math"

	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ComponentType is what Info calls a weft agent. Thanos Query treats a
// "sidecar" as a source of raw, fresh data with its own external labels:
// it warns when two such endpoints share external labels (two agents
// without distinct node labels would mix their series), and it strips
// matchers on external labels from the exemplar queries it forwards
// (only "query" endpoints get them). "query" would make Query treat the
// agent as another Query (forwarding external-label matchers, no
// duplicate check); "store" is a bucket gateway of historical blocks.
const ComponentType = "sidecar"

type infoServer struct{ s *Server }

// Info tells Thanos Query what this endpoint serves: its external labels,
// the StoreAPI from the store's oldest sample on, the Rules API and the
// Exemplars API.
//
// The range is open-ended (MaxTime math.MaxInt64, as a Thanos sidecar
// says of its live Prometheus): the store takes samples all the time, and
// Thanos Query keeps an Info answer for several seconds and skips a store
// whose MaxTime is before a query's start, so the newest sample's time
// would hide every sample taken since the last Info from queries over a
// short recent window. A store without samples yet starts at the time of
// the call: what it takes from then on is selected at once.
func (is infoServer) Info(context.Context, *infopb.InfoRequest) (*infopb.InfoResponse, error) {
	s := is.s
	mint, maxt, err := s.opts.Store.TimeRange()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "store time range: %v", err)
	}
	if mint > maxt {
		mint = s.now().UnixMilli()
	}
	maxt = math.MaxInt64
	lsets := []labelpb.ZLabelSet{zlabelSet(s.ext.lset)}
	return &infopb.InfoResponse{
		LabelSets:     lsets,
		ComponentType: ComponentType,
		Store: &infopb.StoreInfo{
			MinTime: mint, MaxTime: maxt,
			SupportsWithoutReplicaLabels: true,
			TsdbInfos:                    []infopb.TSDBInfo{{Labels: zlabelSet(s.ext.lset), MinTime: mint, MaxTime: maxt}},
		},
		Rules: &infopb.RulesInfo{},
		// The exemplar buffer holds exemplars of the samples the store
		// took; Thanos Query does not filter exemplar stores by time.
		Exemplars: &infopb.ExemplarsInfo{MinTime: mint, MaxTime: maxt},
	}, nil
}
