package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTransition pins every transition of the reload state machine.
func TestTransition(t *testing.T) {
	all := []reloadState{stateNone, stateFailed, stateApplied, statePartial, stateRejected, stateInherited}
	want := map[reloadEvent]map[reloadState]reloadState{
		eventApplied: {
			stateNone: stateApplied, stateFailed: stateApplied, stateApplied: stateApplied,
			statePartial: stateApplied, stateRejected: stateApplied, stateInherited: stateApplied,
		},
		eventPartial: {
			stateNone: statePartial, stateFailed: statePartial, stateApplied: statePartial,
			statePartial: statePartial, stateRejected: statePartial, stateInherited: statePartial,
		},
		eventRejected: {
			stateNone: stateFailed, stateFailed: stateFailed, stateApplied: stateRejected,
			statePartial: stateRejected, stateRejected: stateRejected, stateInherited: stateInherited,
		},
		eventInherited: {
			stateNone: stateInherited, stateFailed: stateInherited, stateApplied: stateApplied,
			statePartial: statePartial, stateRejected: stateRejected, stateInherited: stateInherited,
		},
	}
	for ev, to := range want {
		for _, from := range all {
			t.Run(from.String()+"/"+ev.String(), func(t *testing.T) {
				assert.Equal(t, to[from], transition(from, ev))
			})
		}
	}
}

// TestReloadStateRunning: the states in which a set runs.
func TestReloadStateRunning(t *testing.T) {
	for _, tt := range []struct {
		s       reloadState
		name    string
		applied bool
	}{
		{stateNone, "none", false},
		{stateFailed, "failed", false},
		{stateApplied, "applied", true},
		{statePartial, "partial", true},
		{stateRejected, "rejected", true},
		{stateInherited, "inherited", true},
		{reloadState(99), "unknown", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.s.String())
			assert.Equal(t, tt.applied, tt.s.applied())
		})
	}
}
