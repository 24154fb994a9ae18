//go:build race

package disk

// raceEnabled scales long tests down under the race detector, which slows
// them tenfold.
const raceEnabled = true
