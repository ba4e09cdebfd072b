//go:build !linux

package bigbuf

func mapHuge(int) []byte { return nil }

func unmap([]byte) {}

func mapped() int { return 0 }
