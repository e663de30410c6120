//go:build !race

package weftstore

const raceEnabled = false
