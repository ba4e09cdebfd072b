// Package pgwal holds facts about PostgreSQL write-ahead log files: LSNs, the
// names PostgreSQL gives WAL segments, timeline history files, partial
// segments and backup history files, the long page header that opens every
// segment, the contents of timeline history files, and the commit and abort
// records in a segment's WAL records (ScanXacts), whose times are what
// recovery_target_time is compared with.
//
// Everything here is a pure function of its arguments: no I/O, no clock, no
// package-level state. Parsers are strict and never panic on any input; they
// accept exactly what PostgreSQL writes (upper-case hex in file names, the
// x86-64 little-endian layout of XLogLongPageHeaderData) and reject the rest
// with an error that names the offending input. Names produced here are the
// canonical names PostgreSQL itself uses, so that a name parsed and printed
// again is byte-for-byte the same.
//
// Functions that take a segment size expect a value for which
// ValidSegmentSize is true (a power of two from 1 MiB to 1 GiB, as initdb
// allows); read it from the server (SHOW wal_segment_size) or from a segment's
// LongPageHeader. They panic on an invalid size, as that is a programming
// error rather than bad input.
package pgwal
