// Package layering holds only a test: it enforces the dependency rules of
// the code base (see layering_test.go), as a depguard rule would.
package layering
