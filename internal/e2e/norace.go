//go:build !race

package e2e

// Race reports whether the tests run with the race detector; the relay
// binary is then built with it too.
const Race = false
