//go:build race

package index

// raceEnabled: the race detector's shadow memory grows with every byte the
// program ever touched and is not given back, so RSS bounds are checked in
// a build without it (TestEvictionBoundsRSSWithoutRace).
const raceEnabled = true
