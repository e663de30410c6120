package rules

// reloadState is the state of the engine's rule set, as the reloads left
// it. Every change goes through transition; Status reports it.
type reloadState int

const (
	// stateNone: no reload attempted yet; no rules run.
	stateNone reloadState = iota
	// stateFailed: every attempt so far was rejected and there was no
	// previous set to inherit; no rules run, and every poll retries.
	stateFailed
	// stateApplied: the last attempt was applied whole.
	stateApplied
	// statePartial: the last attempt was applied without some invalid
	// Kubernetes objects (or without a Kubernetes source never listed).
	statePartial
	// stateRejected: the last attempt was rejected; the set applied
	// before it keeps running.
	stateRejected
	// stateInherited: this engine's own set was invalid from the start;
	// the last valid set of the previous engine with the same ID runs.
	stateInherited
)

func (s reloadState) String() string {
	switch s {
	case stateNone:
		return "none"
	case stateFailed:
		return "failed"
	case stateApplied:
		return "applied"
	case statePartial:
		return "partial"
	case stateRejected:
		return "rejected"
	case stateInherited:
		return "inherited"
	}
	return "unknown"
}

// applied reports whether a set runs: this engine's own or an inherited
// one. Only then is an unchanged source set skipped by the polls, and only
// before is a previous engine's set inherited.
func (s reloadState) applied() bool {
	switch s {
	case stateApplied, statePartial, stateRejected, stateInherited:
		return true
	}
	return false
}

// reloadEvent is the outcome of one reload attempt.
type reloadEvent int

const (
	// eventApplied: the new set was valid and swapped in.
	eventApplied reloadEvent = iota
	// eventPartial: the new set was swapped in without the Kubernetes
	// objects that were rejected.
	eventPartial
	// eventRejected: the new set was invalid and not swapped in.
	eventRejected
	// eventInherited: the new set was invalid and the previous engine's
	// last valid set was swapped in instead.
	eventInherited
)

func (ev reloadEvent) String() string {
	switch ev {
	case eventApplied:
		return "applied"
	case eventPartial:
		return "partial"
	case eventRejected:
		return "rejected"
	case eventInherited:
		return "inherited"
	}
	return "unknown"
}

// transition is the one place the reload state changes: the state after
// an attempt with outcome ev in state s.
func transition(s reloadState, ev reloadEvent) reloadState {
	switch ev {
	case eventApplied:
		// A valid set runs now, whatever ran before (an inherited set
		// is replaced by the engine's own).
		return stateApplied
	case eventPartial:
		// The valid part runs; the rejected objects are in Status.
		return statePartial
	case eventInherited:
		if s.applied() {
			// Inheriting happens only before the engine's own first
			// set; an engine running a set keeps it.
			return s
		}
		return stateInherited
	case eventRejected:
		switch s {
		case stateNone, stateFailed:
			// Nothing ran and nothing runs: keep retrying every poll.
			return stateFailed
		case stateInherited:
			// The inherited set keeps running until a valid own set
			// replaces it.
			return stateInherited
		default:
			// The engine's previous set keeps running.
			return stateRejected
		}
	}
	return s
}
