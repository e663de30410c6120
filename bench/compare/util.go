package main

import (
	"strconv"
	"strings"
	"time"
)

// replaceAll replaces {{placeholders}} given as old, new pairs; a
// replacement may itself hold placeholders (a receiver block), so it runs
// until nothing changes (at most three passes).
func replaceAll(s string, oldnew ...string) string {
	r := strings.NewReplacer(oldnew...)
	for range 3 {
		next := r.Replace(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// promDuration writes d in a form both Prometheus and Go accept ("1800ms").
func promDuration(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
